//! Typed UUID ids, so an app id can never be passed where a webhook id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random (v4) id.
            pub fn new_random() -> Self {
                Self(Uuid::new_v4())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.as_hyphenated().fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

uuid_id!(
    /// An organization, the top of the tenancy tree.
    OrganizationId
);
uuid_id!(
    /// A workspace inside an organization.
    WorkspaceId
);
uuid_id!(
    /// An app inside a workspace; every webhook, config param and binding belongs to one.
    AppId
);
uuid_id!(
    /// A webhook (the designer's `resourceDefinitionId`).
    WebhookId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_hyphenated() {
        let s = "7f1c2a9e-0000-4000-8000-000000000001";
        let id: WebhookId = s.parse().expect("valid uuid");
        assert_eq!(id.to_string(), s);
        assert!("not-a-uuid".parse::<AppId>().is_err());
    }
}
