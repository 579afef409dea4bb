//! GENERIC: no provider signature; the API key (checked before this step) is the authentication.

use super::Verified;
use crate::error::SignatureFailure;

/// Always passes: GENERIC requests are authenticated by `flowxApiKey` alone.
pub fn verify() -> Result<Verified, SignatureFailure> {
    Ok(Verified::Publish(None))
}
