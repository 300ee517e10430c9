//! Splitting a push body into its mutations' texts without decoding them.
//!
//! The server prepares a push's mutations while it writes them (see
//! `sync-server/src/prepare.rs`); for that it needs each mutation's place in
//! the body before any is decoded. This is a pure function of the bytes, so
//! it lives with the wire types and is fuzzed with the other decoders.

/// A push body that cannot be split: the caller decodes it whole, and the
/// full decoder says what is wrong and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitError;

/// Splits a push body `{"protocol": .., "mutations": [..]}` (keys in any
/// order, other keys ignored as the full decoder ignores them), calling
/// `found` with each mutation's place as it is found; gives the protocol and
/// how many mutations there were.
///
/// Why not serde: reading each mutation as a `RawValue` validated every
/// byte of it (UTF-8, escapes, numbers) on the server's scanning thread
/// before its writer could start, ~0.45 ms for a 100-sheet push, while each
/// mutation is parsed strictly anyway when it is prepared. Here only the push's own
/// structure is checked (keys, `protocol`, ignored values: with serde, they
/// are small) and a mutation's end is found by matching brackets outside
/// strings, skipping through strings with `memchr`. A mutation that is not
/// valid JSON is refused when it is prepared, so a body is taken exactly
/// when the full decoder takes it (property-tested against serde in
/// `shared/tests/split.rs`, and fuzzed with `shared/fuzz/run.sh`).
pub fn split_push(
    b: &[u8],
    mut found: impl FnMut(std::ops::Range<usize>),
) -> std::result::Result<(u32, usize), SplitError> {
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return Err(SplitError);
    }
    i = skip_ws(b, i + 1);
    let (mut protocol, mut count) = (None, None);
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            if b.get(i) != Some(&b'"') {
                return Err(SplitError);
            }
            let end = string_end(b, i)?;
            let key: std::borrow::Cow<'_, str> =
                serde_json::from_slice(&b[i..end]).map_err(|_| SplitError)?;
            i = skip_ws(b, end);
            if b.get(i) != Some(&b':') {
                return Err(SplitError);
            }
            i = skip_ws(b, i + 1);
            match key.as_ref() {
                "protocol" if protocol.is_none() => {
                    let end = value_end(b, i)?;
                    protocol =
                        Some(serde_json::from_slice::<u32>(&b[i..end]).map_err(|_| SplitError)?);
                    i = end;
                }
                "mutations" if count.is_none() => {
                    let (n, end) = split_list(b, i, &mut found)?;
                    count = Some(n);
                    i = end;
                }
                "protocol" | "mutations" => return Err(SplitError),
                _ => {
                    let end = value_end(b, i)?;
                    serde_json::from_slice::<serde::de::IgnoredAny>(&b[i..end])
                        .map_err(|_| SplitError)?;
                    i = end;
                }
            }
            i = skip_ws(b, i);
            match b.get(i) {
                Some(b',') => i = skip_ws(b, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return Err(SplitError),
            }
        }
    }
    if skip_ws(b, i) != b.len() {
        return Err(SplitError);
    }
    Ok((protocol.ok_or(SplitError)?, count.ok_or(SplitError)?))
}

/// The `mutations` list starting at `b[i]`: each element's place; gives
/// their count and where the list ends.
fn split_list(
    b: &[u8],
    i: usize,
    found: &mut impl FnMut(std::ops::Range<usize>),
) -> std::result::Result<(usize, usize), SplitError> {
    if b.get(i) != Some(&b'[') {
        return Err(SplitError);
    }
    let mut j = skip_ws(b, i + 1);
    if b.get(j) == Some(&b']') {
        return Ok((0, j + 1));
    }
    let mut n = 0;
    loop {
        let end = value_end(b, j)?;
        found(j..end);
        n += 1;
        j = skip_ws(b, end);
        match b.get(j) {
            Some(b',') => j = skip_ws(b, j + 1),
            Some(b']') => return Ok((n, j + 1)),
            _ => return Err(SplitError),
        }
    }
}

/// The first byte at or after `i` that is not JSON whitespace.
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// Where the string starting at `b[i]` (a quote) ends, past its closing quote.
fn string_end(b: &[u8], i: usize) -> std::result::Result<usize, SplitError> {
    let mut j = i + 1;
    loop {
        let k =
            j + memchr::memchr2(b'"', b'\\', b.get(j..).ok_or(SplitError)?).ok_or(SplitError)?;
        if b[k] == b'"' {
            return Ok(k + 1);
        }
        // A backslash: the byte after it is escaped, whatever it is.
        j = k + 2;
    }
}

/// Where the JSON value starting at `b[i]` ends, found by its shape only:
/// a string to its closing quote, an object or list to its matching
/// bracket (strings skipped), anything else to the next delimiter. What is
/// inside is not checked here.
fn value_end(b: &[u8], i: usize) -> std::result::Result<usize, SplitError> {
    match b.get(i).ok_or(SplitError)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            Err(SplitError)
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            {
                j += 1;
            }
            if j == i { Err(SplitError) } else { Ok(j) }
        }
    }
}
