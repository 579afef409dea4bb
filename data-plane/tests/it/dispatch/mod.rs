//! The dispatcher (`data-plane dispatch`) against the real broker and real HTTP action servers on
//! 127.0.0.1, with its config applied in the test (the control-plane path is in the e2e tests).

mod calls;
mod delivery;
mod protection;
mod retries;
mod support;
mod tool;

use support::{email_schema, KEY};
