//! Outbound actions (docs/actions.md): the action servers an app registered and the HMAC keys that
//! sign the calls to them. What dispatch planes receive is in [`routes`].

pub(crate) mod keys;
pub(crate) mod routes;
pub(crate) mod store;
