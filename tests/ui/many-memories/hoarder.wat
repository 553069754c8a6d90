;; A component that instantiates a one-memory module five times: more linear memories than
;; one process may take from the pool.
(component
  (core module $m (memory 1))
  (core instance (instantiate $m))
  (core instance (instantiate $m))
  (core instance (instantiate $m))
  (core instance (instantiate $m))
  (core instance (instantiate $m))
)
