//! Keyset paging: `page_size` and opaque `page_token`s (base64url of the last key of a page).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::error::{ApiError, ApiResult};
use crate::reasons;

/// Default and maximum page sizes.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

/// A page request: how many rows and the key after which to start.
#[derive(Clone, Debug)]
pub(crate) struct Page {
    /// Rows to return.
    pub size: i64,
    /// Exclusive start key (the last key of the previous page).
    pub after: Option<String>,
}

/// A page token this server did not issue (INVALID_ARGUMENT, reason PAGE_TOKEN_INVALID).
pub(crate) fn invalid_token() -> ApiError {
    ApiError::invalid(
        reasons::PAGE_TOKEN_INVALID,
        "page_token",
        "page_token is not one this server issued",
    )
}

impl Page {
    /// Parses `page_size` and `page_token`.
    pub fn parse(page_size: u32, page_token: &str) -> ApiResult<Self> {
        if page_size > MAX_PAGE {
            return Err(ApiError::invalid(
                reasons::PAGE_SIZE_INVALID,
                "page_size",
                format!("page_size must be at most {MAX_PAGE}"),
            ));
        }
        let size = if page_size == 0 {
            DEFAULT_PAGE
        } else {
            page_size
        };
        let after = if page_token.is_empty() {
            None
        } else {
            let bytes = URL_SAFE_NO_PAD
                .decode(page_token)
                .map_err(|_| invalid_token())?;
            Some(String::from_utf8(bytes).map_err(|_| invalid_token())?)
        };
        Ok(Self {
            size: i64::from(size),
            after,
        })
    }

    /// The start key parsed by `parse` (a key that does not parse is PAGE_TOKEN_INVALID).
    pub fn after_as<T: std::str::FromStr>(&self) -> ApiResult<Option<T>> {
        self.after
            .as_deref()
            .map(|a| a.parse().map_err(|_| invalid_token()))
            .transpose()
    }

    /// Rows to fetch: one more than the page, to know whether another page follows.
    pub fn fetch(&self) -> i64 {
        self.size + 1
    }

    /// Trims `rows` to the page and returns the next page token (empty on the last page).
    pub fn finish<T>(&self, rows: &mut Vec<T>, key: impl Fn(&T) -> String) -> String {
        let size = usize::try_from(self.size).unwrap_or(usize::MAX);
        if rows.len() > size {
            rows.truncate(size);
            rows.last()
                .map(|r| URL_SAFE_NO_PAD.encode(key(r)))
                .unwrap_or_default()
        } else {
            String::new()
        }
    }
}
