//! The location shard: being written.
