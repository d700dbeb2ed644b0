//! The wire codec of every server function's result (and of [`crate::error::AppError`]): JSON,
//! exactly as server_fn's `Json`, but decoded from text.
//!
//! Why: a hydrated resource decodes its server-rendered value with `serde_json::from_str`, while
//! server_fn's own `JsonEncoding` decodes responses with `from_slice`. The two readers are
//! distinct generic instances, so the WASM carried every response type's deserializer twice.
//! Decoding responses from text as well shares one copy (see docs/benchmarks.md, 2026-12-02).

use leptos::server_fn::{codec::Post, Bytes, ContentType, Decodes, Encodes, Format, FormatType};
use serde::{de::DeserializeOwned, Serialize};

/// JSON in the body, decoded with `serde_json::from_str` after a UTF-8 check.
pub struct JsonText;

/// The output encoding for `#[server(output = JsonOut)]`: a POST whose response is JSON.
pub type JsonOut = Post<JsonText>;

impl ContentType for JsonText {
    const CONTENT_TYPE: &'static str = "application/json";
}

impl FormatType for JsonText {
    const FORMAT_TYPE: Format = Format::Text;
}

impl<T: Serialize> Encodes<T> for JsonText {
    type Error = serde_json::Error;

    fn encode(output: &T) -> Result<Bytes, Self::Error> {
        serde_json::to_vec(output).map(Bytes::from)
    }
}

impl<T: DeserializeOwned> Decodes<T> for JsonText {
    type Error = serde_json::Error;

    fn decode(bytes: Bytes) -> Result<T, Self::Error> {
        let text = std::str::from_utf8(&bytes).map_err(serde::de::Error::custom)?;
        serde_json::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_like_json() {
        let value = vec![Some("a\u{e9}".to_string()), None];
        let bytes = <JsonText as Encodes<_>>::encode(&value).unwrap();
        assert_eq!(&bytes[..], serde_json::to_vec(&value).unwrap().as_slice());
        let back: Vec<Option<String>> = <JsonText as Decodes<_>>::decode(bytes).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn refuses_invalid_utf8() {
        let bad = Bytes::from_static(b"\"\xff\"");
        assert!(<JsonText as Decodes<String>>::decode(bad).is_err());
    }
}
