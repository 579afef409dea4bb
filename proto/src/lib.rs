//! Generated gRPC types, clients and servers for package `webhook.gateway.v1`.
#![allow(clippy::all, missing_docs)]

/// `webhook.gateway.v1`: every service of the control plane.
pub mod v1 {
    tonic::include_proto!("webhook.gateway.v1");
}

/// Encoded `FileDescriptorSet` of every file in `proto/`, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("gateway_descriptor");

pub mod convert;
mod redact;
