//! Reading a request body under a size limit and a deadline (docs/data-plane.md, "HTTP contract"
//! step 4). The declared `Content-Length` is checked before anything is read; a lying or absent one
//! (chunked, HTTP/2 streams) is cut off as soon as the running total passes the limit, so no more
//! than `limit` bytes are ever buffered.

use bytes::{Bytes, BytesMut};
use http_body::Body;
use http_body_util::BodyExt;
use tokio::time::Instant;

use crate::error::IngestError;

/// Reads the whole body, or fails with 413 (over `limit`), 408 (past `deadline`) or 400 (broken stream).
pub async fn read_limited<B>(
    mut body: B,
    limit: usize,
    deadline: Instant,
) -> Result<Bytes, IngestError>
where
    B: Body<Data = Bytes> + Unpin,
{
    let too_large = || IngestError::PayloadTooLarge { limit };
    let declared = body.size_hint().lower();
    if declared > limit as u64 {
        return Err(too_large());
    }
    // Trust a declared length only as a capacity hint, never beyond the limit.
    let mut buf = BytesMut::with_capacity(usize::try_from(declared).unwrap_or(limit).min(limit));
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| IngestError::BodyRead)?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > limit {
                    return Err(too_large());
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(())
    };
    match tokio::time::timeout_at(deadline, read).await {
        Ok(Ok(())) => Ok(buf.freeze()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(IngestError::BodyTimeout),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::stream;
    use http_body::Frame;
    use http_body_util::{Full, StreamBody};

    use super::*;

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[tokio::test]
    async fn reads_bodies_up_to_the_limit() {
        let got = read_limited(Full::new(Bytes::from_static(b"12345")), 5, later()).await;
        assert_eq!(got.ok(), Some(Bytes::from_static(b"12345")));
    }

    #[tokio::test]
    async fn declared_length_over_the_limit_is_refused_before_reading() {
        let got = read_limited(Full::new(Bytes::from_static(b"123456")), 5, later()).await;
        assert!(matches!(
            got,
            Err(IngestError::PayloadTooLarge { limit: 5 })
        ));
    }

    #[tokio::test]
    async fn undeclared_length_is_cut_off_at_the_limit() {
        // An endless stream: the reader must stop at the limit instead of buffering it all.
        let chunks = stream::iter(std::iter::repeat_with(|| {
            Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from_static(b"abc")))
        }));
        let got = read_limited(StreamBody::new(chunks), 10, later()).await;
        assert!(matches!(
            got,
            Err(IngestError::PayloadTooLarge { limit: 10 })
        ));
    }

    #[tokio::test]
    async fn a_stalled_body_times_out() {
        let stalled = StreamBody::new(stream::pending::<
            Result<Frame<Bytes>, std::convert::Infallible>,
        >());
        let got = read_limited(stalled, 10, Instant::now() + Duration::from_millis(20)).await;
        assert!(matches!(got, Err(IngestError::BodyTimeout)));
    }
}
