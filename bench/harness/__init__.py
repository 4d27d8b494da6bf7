"""`make bench`: the Go load generator against ChatConnect (embedded, and ScyllaDB +
Redis) and ejabberd, written up in docs/benchmarks.md."""
