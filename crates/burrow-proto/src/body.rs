//! The ARRAY body: a u32 count, then per item a u32 length and its bytes.
//! Used by LPUSH/RPUSH request values and LRANGE/SCAN/LPOP-with-count replies.

use byteorder::{BigEndian, ByteOrder};
use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ArrayError {
    #[error("array body shorter than its 4-byte count")]
    MissingCount,
    #[error("array item {index} truncated")]
    Truncated { index: u32 },
    #[error("{extra} bytes after the last array item")]
    Trailing { extra: usize },
}

/// Size of `items` once encoded.
pub fn encoded_array_len<T: AsRef<[u8]>>(items: &[T]) -> usize {
    4 + items.iter().map(|i| 4 + i.as_ref().len()).sum::<usize>()
}

pub fn encode_array<T: AsRef<[u8]>>(items: &[T], dst: &mut BytesMut) {
    dst.reserve(encoded_array_len(items));
    dst.put_u32(items.len() as u32);
    for item in items {
        let item = item.as_ref();
        dst.put_u32(item.len() as u32);
        dst.extend_from_slice(item);
    }
}

/// Splits an ARRAY body into zero-copy `Bytes` slices of `body`.
pub fn decode_array(body: &Bytes) -> Result<Vec<Bytes>, ArrayError> {
    Ok(decode_array_ref(body)?.into_iter().map(|s| body.slice_ref(s)).collect())
}

/// Splits an ARRAY body into borrowed slices of `body`.
pub fn decode_array_ref(body: &[u8]) -> Result<Vec<&[u8]>, ArrayError> {
    if body.len() < 4 {
        return Err(ArrayError::MissingCount);
    }
    let count = BigEndian::read_u32(&body[..4]);
    let mut pos = 4usize;
    // Each item needs at least 4 bytes, so a lying count cannot make us over-allocate.
    let mut items = Vec::with_capacity((count as usize).min((body.len() - 4) / 4));
    for index in 0..count {
        if body.len() - pos < 4 {
            return Err(ArrayError::Truncated { index });
        }
        let len = BigEndian::read_u32(&body[pos..pos + 4]) as usize;
        pos += 4;
        if body.len() - pos < len {
            return Err(ArrayError::Truncated { index });
        }
        items.push(&body[pos..pos + len]);
        pos += len;
    }
    if pos != body.len() {
        return Err(ArrayError::Trailing { extra: body.len() - pos });
    }
    Ok(items)
}
