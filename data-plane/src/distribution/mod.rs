//! Config from the control plane: the stream client and the encrypted disk cache of the last good
//! snapshot.

pub mod cache;
pub mod client;
pub mod sink;

pub use cache::{CacheError, SnapshotCache};
pub use client::{ConfigSink, Credentials, StreamClientConfig, StreamStatus};
pub use sink::{start, RoutesSink, StreamArgs};
