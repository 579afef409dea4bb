//! Config from the control plane: the stream client and the encrypted disk cache of the last good
//! snapshot.

pub mod cache;
pub mod client;
pub mod report;
pub mod sink;

pub use cache::{CacheError, SnapshotCache};
pub use client::{ConfigSink, Credentials, Link, StreamClientConfig, StreamStatus};
pub use sink::{start, RoutesSink, Started, StreamArgs};
