#!/usr/bin/env escript
%%! +sbwt none
%% The Erlang side of wasmhost's benchmark suite: the same scenarios as the guests in
%% guests/testing/bench-client, written the way an Erlang programmer would. Run by
%% `bench/run`; by hand: `escript bench/erlang/suite.erl ping-pong:100000 ring:1000:100`.
%%
%% Each argument is SCENARIO:N[:M]; each prints one line of key=value pairs:
%% scenario, ops (operations measured), wall_ns, cpu_ns (CPU time of the whole VM during the
%% run), and p50_ns/p99_ns where each operation is timed on its own.
-mode(compile).

main(Args) ->
    lists:foreach(fun run/1, Args).

run(Arg) ->
    [Name | Counts] = string:split(Arg, ":", all),
    [N | Rest] = [list_to_integer(C) || C <- Counts],
    M = case Rest of [] -> 0; [X | _] -> X end,
    erlang:garbage_collect(),
    {Cpu0, _} = statistics(runtime),
    T0 = erlang:monotonic_time(nanosecond),
    {Ops, Times, Extra} = scenario(Name, N, M),
    Wall = erlang:monotonic_time(nanosecond) - T0,
    {Cpu1, _} = statistics(runtime),
    io:format("scenario=~s ops=~b wall_ns=~b cpu_ns=~b~s~s~n",
              [Name, Ops, Wall, (Cpu1 - Cpu0) * 1000000, percentiles(Times), Extra]).

percentiles([]) -> "";
percentiles(Times) ->
    Sorted = lists:sort(Times),
    Len = length(Sorted),
    At = fun(Q) -> lists:nth(1 + trunc((Len - 1) * Q), Sorted) end,
    io_lib:format(" p50_ns=~b p99_ns=~b", [At(0.5), At(0.99)]).

%% spawn_monitor of a process that returns at once, until its 'DOWN' arrives.
scenario("spawn-monitor", N, _) ->
    Times = [begin
                 T = now_ns(),
                 {_, Ref} = spawn_monitor(fun() -> ok end),
                 receive {'DOWN', Ref, process, _, normal} -> now_ns() - T end
             end || _ <- lists:seq(1, N)],
    {N, Times, ""};

%% A 32-byte binary to a partner and back.
scenario("ping-pong", N, _) ->
    Partner = spawn(fun pong/0),
    Me = self(),
    Times = [begin
                 T = now_ns(),
                 Partner ! {Me, message()},
                 receive {pong, _} -> now_ns() - T end
             end || _ <- lists:seq(1, N)],
    Partner ! stop,
    {N, Times, ""};

%% N 32-byte binaries to one receiver; done when it has taken them all.
scenario("flood", N, _) ->
    Me = self(),
    Sink = spawn(fun() -> sink(N, Me) end),
    Message = message(),
    [Sink ! Message || _ <- lists:seq(1, N)],
    receive done -> ok end,
    {N, [], ""};

%% N processes in a ring pass a token M times round.
scenario("ring", N, M) ->
    Me = self(),
    First = ring(N, Me),
    First ! {token, N * M},
    receive done -> ok end,
    {N * M, [], ""};

%% A client sends a line to the relay, which spawns a worker per line; the worker answers.
scenario("echo", N, _) ->
    Relay = relay(),
    Times = echo_client(Relay, N),
    exit(Relay, kill),
    {N, Times, ""};

%% 64 clients at once, each sending N lines.
scenario("echo-64", N, _) ->
    Relay = relay(),
    Me = self(),
    Clients = [spawn(fun() -> Me ! {times, echo_client(Relay, N)} end) || _ <- lists:seq(1, 64)],
    Times = lists:append([receive {times, T} -> T end || _ <- Clients]),
    exit(Relay, kill),
    {64 * N, Times, ""};

%% N processes spawned at once, each returning at once; done when all have exited.
scenario("burst", N, _) ->
    Refs = [element(2, spawn_monitor(fun() -> ok end)) || _ <- lists:seq(1, N)],
    [receive {'DOWN', Ref, process, _, _} -> ok end || Ref <- Refs],
    {N, [], ""};

%% N processes alive at once, each blocked in receive: how long spawning them takes, and the
%% memory each adds.
scenario("live", N, _) ->
    erlang:garbage_collect(),
    Before = erlang:memory(total),
    Pids = [spawn(fun() -> receive stop -> ok end end) || _ <- lists:seq(1, N)],
    After = erlang:memory(total),
    [P ! stop || P <- Pids],
    {N, [], io_lib:format(" bytes_per_process=~b", [max(0, (After - Before) div N)])};

%% N processes hibernated (erlang:hibernate/3) in receive: the memory each adds once all
%% hibernate (the growth from half of them to all, over the second half, as wasmhost's side
%% measures it), and, for 1 000 of them one at a time, the time from a message to its answer.
scenario("hibernated", N, _) ->
    Half = N div 2,
    First = [spawn(fun() -> sleeper(0) end) || _ <- lists:seq(1, Half)],
    [wait_hibernated(P) || P <- First],
    erlang:garbage_collect(),
    AtHalf = erlang:memory(total),
    Second = [spawn(fun() -> sleeper(0) end) || _ <- lists:seq(Half + 1, N)],
    [wait_hibernated(P) || P <- Second],
    After = erlang:memory(total),
    {Sample, _} = lists:split(min(1000, N), First ++ Second),
    Me = self(),
    Times = [begin
                 T = now_ns(),
                 P ! {add, 1, Me},
                 receive {total, P, _} -> now_ns() - T end
             end || P <- Sample],
    [exit(P, kill) || P <- First ++ Second],
    {N, Times, io_lib:format(" bytes_per_process=~b",
                             [max(0, (After - AtHalf) div max(1, N - Half))])}.

%% A counter that hibernates between messages, as guests/testing/child's `counter` does.
sleeper(Count) ->
    erlang:hibernate(erlang, apply, [fun sleeping/1, [Count]]).

sleeping(Count) ->
    receive
        {add, X, From} -> From ! {total, self(), Count + X}, sleeper(Count + X);
        stop -> ok
    end.

wait_hibernated(Pid) ->
    case erlang:process_info(Pid, current_function) of
        {current_function, {erlang, hibernate, 3}} -> ok;
        _ -> timer:sleep(1), wait_hibernated(Pid)
    end.

message() -> <<"0123456789abcdef0123456789abcdef">>.

now_ns() -> erlang:monotonic_time(nanosecond).

pong() ->
    receive
        {From, Data} -> From ! {pong, Data}, pong();
        stop -> ok
    end.

sink(0, Parent) -> Parent ! done;
sink(N, Parent) -> receive _ -> sink(N - 1, Parent) end.

ring(N, Boss) ->
    Members = [spawn(fun() -> receive {next, Next} -> member(Next, Boss) end end)
               || _ <- lists:seq(1, N)],
    [M ! {next, Next} || {M, Next} <- lists:zip(Members, tl(Members) ++ [hd(Members)])],
    hd(Members).

member(Next, Boss) ->
    receive
        {token, 0} -> Boss ! done, member(Next, Boss);
        {token, Left} -> Next ! {token, Left - 1}, member(Next, Boss);
        stop -> ok
    end.

relay() ->
    spawn(fun relay_loop/0).

relay_loop() ->
    receive
        {echo, Client, Data} ->
            spawn(fun() -> Client ! {echo_response, string:uppercase(Data), self()} end),
            relay_loop()
    end.

echo_client(Relay, N) ->
    Me = self(),
    [begin
         T = now_ns(),
         Relay ! {echo, Me, <<"hello world">>},
         receive {echo_response, _, _} -> now_ns() - T end
     end || _ <- lists:seq(1, N)].
