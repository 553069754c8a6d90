;; A component that instantiates a one-memory module three times: more linear memories than
;; a process's share of the pool.
(component
  (core module $m (memory 1))
  (core instance (instantiate $m))
  (core instance (instantiate $m))
  (core instance (instantiate $m))
)
