//! Integration tests of the data plane: the real `run` on port 0, a real Kafka-protocol broker.

mod accepted;
mod api_key;
mod connections;
mod dispatch;
mod errors;
mod foundation;
mod lifecycle;
mod limits;
mod producer;
mod providers;
mod record_size;
mod replay_window;
mod signals;
mod support;
