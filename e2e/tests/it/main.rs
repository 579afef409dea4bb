//! End-to-end: a grpc client drives the control plane, the config stream carries the change to a data
//! plane, and the data plane's answer and the Kafka record prove it arrived.

mod broker;
mod dispatch;
mod distribution;
mod failed_trigger_flood;
mod failed_triggers;
mod faults;
mod rate_limits;
mod registration;
mod rotation;
mod support;
