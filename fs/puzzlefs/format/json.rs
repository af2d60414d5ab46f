// SPDX-License-Identifier: GPL-2.0

//! A small, strict JSON reader that does not allocate.
//!
//! [`parse`] validates a whole document once (RFC 8259 syntax, UTF-8, a
//! nesting limit of [`MAX_DEPTH`], no trailing bytes) and returns its root
//! [`Value`]. The caller bounds the document's size: OCI image manifests list
//! every chunk blob of an image (about 250 bytes each), so their size grows
//! with the image. Values are spans of the document; objects and arrays are
//! walked by re-scanning, which skips the members it passes over by their
//! quotes and brackets only (the document is known to be valid), and strings
//! are decoded on demand, either compared against a key ([`Str::eq_bytes`]) or decoded into
//! a caller buffer ([`Str::decode`]), with all escapes including `\u`
//! surrogate pairs; lone surrogates are rejected.
//!
//! Numbers are accepted with the full JSON syntax, but only integers that fit
//! an `i64` or `u64` can be read as numbers ([`Value::as_i64`],
//! [`Value::as_u64`]); fractions and exponents are an error when read.
//!
//! Duplicate keys: a key that is looked up with [`Object::get`] and appears
//! more than once in that object is an error. Duplicates of keys never looked
//! up are ignored; checking them would cost quadratic time or memory.

use crate::format::{Error, Result};
use core::ops::ControlFlow;

/// Called while scanning large documents, at least every [`POLL_BYTES`] bytes: in the kernel it
/// reschedules and stops the scan (with its error) when the task is being killed. Image
/// manifests list every chunk blob of an image and can be tens of MiB.
pub(crate) trait Poll: core::fmt::Debug {
    /// Gives the CPU away if needed; an error stops the scan and is returned.
    fn poll(&self) -> Result<()>;
}

/// A [`Poll`] that never stops anything (tests; the driver polls every document it reads).
#[cfg(any(test, CONFIG_KUNIT, puzzlefs_host))]
#[derive(Debug)]
pub(crate) struct NoPoll;

#[cfg(any(test, CONFIG_KUNIT, puzzlefs_host))]
impl Poll for NoPoll {
    fn poll(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(any(test, CONFIG_KUNIT, puzzlefs_host))]
static NO_POLL: NoPoll = NoPoll;

/// Bytes scanned between two polls.
pub(crate) const POLL_BYTES: usize = 64 << 10;

/// Maximum nesting of arrays and objects.
pub(crate) const MAX_DEPTH: usize = 32;

fn err(offset: usize, what: &'static str) -> Error {
    Error::Json { offset, what }
}

/// Scanner over a document; `pos` is always at most `doc.len()`.
#[derive(Clone, Copy)]
struct Cursor<'a> {
    doc: &'a [u8],
    pos: usize,
    poll: &'a dyn Poll,
    /// Where the last poll was.
    mark: usize,
}

impl<'a> Cursor<'a> {
    /// The value spanning from `start` to the cursor.
    fn span_from(&self, start: usize) -> Value<'a> {
        Value {
            doc: self.doc,
            start,
            end: self.pos,
            poll: self.poll,
        }
    }

    /// Polls if [`POLL_BYTES`] were scanned since the last poll.
    fn pace(&mut self) -> Result<()> {
        if self.pos.saturating_sub(self.mark) >= POLL_BYTES {
            self.mark = self.pos;
            self.poll.poll()?;
        }
        Ok(())
    }

    fn peek(&self) -> Option<u8> {
        self.doc.get(self.pos).copied()
    }

    fn bump(&mut self) {
        if self.pos < self.doc.len() {
            self.pos = self.pos.saturating_add(1);
        }
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.bump();
            // A stop request is seen again at the next poll that can return it.
            let _ = self.pace();
        }
    }

    /// The bytes from the cursor up to [`POLL_BYTES`] further: the window a scanning loop may
    /// cover before it polls again.
    fn window(&self) -> &'a [u8] {
        let end = self.pos.saturating_add(POLL_BYTES).min(self.doc.len());
        self.doc.get(self.pos..end).unwrap_or(&[])
    }

    /// Moves the cursor `n` bytes on, at most to the end of the document.
    fn advance(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n).min(self.doc.len());
    }

    /// Moves the cursor to the next byte for which `stop` is true and returns it (`None` at the
    /// end of the document), polling after each window of [`POLL_BYTES`].
    fn scan_to(&mut self, stop: impl Fn(u8) -> bool) -> Result<Option<u8>> {
        loop {
            let w = self.window();
            let n = w.iter().position(|&b| stop(b));
            self.advance(n.unwrap_or(w.len()));
            self.pace()?;
            if n.is_some() || w.is_empty() {
                return Ok(self.peek());
            }
        }
    }

    /// Moves past the string at the cursor without decoding it, whose escapes are already
    /// known to be valid: only a backslash's next byte is skipped.
    fn skip_string(&mut self) -> Result<()> {
        self.expect_byte(b'"', "expected string")?;
        loop {
            match self.scan_to(|b| b == b'"' || b == b'\\')? {
                Some(b'"') => {
                    self.bump();
                    return Ok(());
                }
                Some(_) => {
                    // A backslash and the byte it escapes; `\uXXXX` needs no more care.
                    self.bump();
                    self.bump();
                }
                None => return Err(err(self.pos, "unterminated string")),
            }
        }
    }

    /// Moves past the value at the cursor in a document that [`parse_polled`] validated,
    /// tracking only strings and brackets: the walks of a parsed [`Value`] use it, so that
    /// each lookup does not validate what it skips again. On bytes that were not validated it
    /// still ends, without panicking, but may stop anywhere.
    fn skip_value(&mut self) -> Result<()> {
        match self.peek() {
            Some(b'"') => return self.skip_string(),
            Some(b'{' | b'[') => {}
            Some(_) => {
                // A number or a literal: up to the next delimiter or the end.
                self.scan_to(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))?;
                return Ok(());
            }
            None => return Err(err(self.pos, "unexpected end")),
        }
        let mut depth = 0usize;
        loop {
            match self.scan_to(|b| matches!(b, b'"' | b'{' | b'[' | b'}' | b']'))? {
                Some(b'"') => self.skip_string()?,
                Some(b'{' | b'[') => {
                    depth = depth.saturating_add(1);
                    self.bump();
                }
                Some(_) => {
                    self.bump();
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return Ok(());
                    }
                }
                None => return Err(err(self.pos, "unexpected end")),
            }
        }
    }

    fn expect_byte(&mut self, c: u8, what: &'static str) -> Result<()> {
        if self.peek() == Some(c) {
            self.bump();
            Ok(())
        } else {
            Err(err(self.pos, what))
        }
    }

    fn value(&mut self, depth: usize) -> Result<()> {
        self.pace()?;
        match self.peek() {
            Some(b'{') => self.object(depth.saturating_add(1)),
            Some(b'[') => self.array(depth.saturating_add(1)),
            Some(b'"') => self.string(),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(_) => Err(err(self.pos, "unexpected character")),
            None => Err(err(self.pos, "unexpected end")),
        }
    }

    fn literal(&mut self, lit: &[u8]) -> Result<()> {
        for &c in lit {
            self.expect_byte(c, "bad literal")?;
        }
        Ok(())
    }

    fn object(&mut self, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(err(self.pos, "nesting too deep"));
        }
        self.bump();
        self.ws();
        if self.peek() == Some(b'}') {
            self.bump();
            return Ok(());
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(err(self.pos, "expected key"));
            }
            self.string()?;
            self.ws();
            self.expect_byte(b':', "expected ':'")?;
            self.ws();
            self.value(depth)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.bump(),
                Some(b'}') => {
                    self.bump();
                    return Ok(());
                }
                _ => return Err(err(self.pos, "expected ',' or '}'")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(err(self.pos, "nesting too deep"));
        }
        self.bump();
        self.ws();
        if self.peek() == Some(b']') {
            self.bump();
            return Ok(());
        }
        loop {
            self.ws();
            self.value(depth)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.bump(),
                Some(b']') => {
                    self.bump();
                    return Ok(());
                }
                _ => return Err(err(self.pos, "expected ',' or ']'")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32> {
        let mut v: u32 = 0;
        for _ in 0..4 {
            let d = match self.peek() {
                Some(c @ b'0'..=b'9') => c.wrapping_sub(b'0'),
                Some(c @ b'a'..=b'f') => c.wrapping_sub(b'a').wrapping_add(10),
                Some(c @ b'A'..=b'F') => c.wrapping_sub(b'A').wrapping_add(10),
                _ => return Err(err(self.pos, "bad \\u escape")),
            };
            v = (v << 4) | u32::from(d);
            self.bump();
        }
        Ok(v)
    }

    /// Reads an escape after the backslash and returns the character.
    fn escape(&mut self) -> Result<char> {
        let at = self.pos;
        let c = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.bump();
                let hi = self.hex4()?;
                let cp = if (0xd800..0xdc00).contains(&hi) {
                    self.expect_byte(b'\\', "lone high surrogate")?;
                    self.expect_byte(b'u', "lone high surrogate")?;
                    let lo = self.hex4()?;
                    if !(0xdc00..0xe000).contains(&lo) {
                        return Err(err(at, "bad surrogate pair"));
                    }
                    0x10000u32
                        .wrapping_add((hi.wrapping_sub(0xd800)) << 10)
                        .wrapping_add(lo.wrapping_sub(0xdc00))
                } else {
                    hi
                };
                return char::from_u32(cp).ok_or(err(at, "lone low surrogate"));
            }
            _ => return Err(err(at, "bad escape")),
        };
        self.bump();
        Ok(c)
    }

    /// Reads one character of string content (the cursor is inside the
    /// quotes); `None` at the closing quote.
    fn string_char(&mut self) -> Result<Option<char>> {
        match self.peek() {
            None => Err(err(self.pos, "unterminated string")),
            Some(b'"') => Ok(None),
            Some(b'\\') => {
                self.bump();
                self.escape().map(Some)
            }
            Some(c) if c < 0x20 => Err(err(self.pos, "control character in string")),
            Some(c) => {
                let width = match c {
                    0x00..=0x7f => 1usize,
                    0xc0..=0xdf => 2,
                    0xe0..=0xef => 3,
                    _ => 4,
                };
                let end = self.pos.saturating_add(width);
                let ch = self
                    .doc
                    .get(self.pos..end)
                    .and_then(|b| core::str::from_utf8(b).ok())
                    .and_then(|s| s.chars().next())
                    .ok_or(err(self.pos, "invalid UTF-8"))?;
                self.pos = end;
                Ok(Some(ch))
            }
        }
    }

    /// Validates the string at the cursor and moves past it. The document is valid UTF-8
    /// ([`parse_polled`] checks it first), so only quotes, escapes and control characters need
    /// a look.
    fn string(&mut self) -> Result<()> {
        self.expect_byte(b'"', "expected string")?;
        loop {
            match self.scan_to(|b| b == b'"' || b == b'\\' || b < 0x20)? {
                Some(b'"') => {
                    self.bump();
                    return Ok(());
                }
                Some(b'\\') => {
                    self.bump();
                    self.escape()?;
                }
                Some(_) => return Err(err(self.pos, "control character in string")),
                None => return Err(err(self.pos, "unterminated string")),
            }
        }
    }

    fn digits(&mut self) -> Result<()> {
        if !matches!(self.peek(), Some(b'0'..=b'9')) {
            return Err(err(self.pos, "expected digit"));
        }
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.bump();
            self.pace()?;
        }
        Ok(())
    }

    fn number(&mut self) -> Result<()> {
        if self.peek() == Some(b'-') {
            self.bump();
        }
        match self.peek() {
            Some(b'0') => self.bump(),
            Some(b'1'..=b'9') => self.digits()?,
            _ => return Err(err(self.pos, "bad number")),
        }
        if self.peek() == Some(b'.') {
            self.bump();
            self.digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.bump();
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.bump();
            }
            self.digits()?;
        }
        Ok(())
    }
}

/// Validates `doc` as one JSON value and returns it (tests: the driver uses [`parse_polled`]).
#[cfg(any(test, CONFIG_KUNIT, puzzlefs_host))]
pub(crate) fn parse(doc: &[u8]) -> Result<Value<'_>> {
    parse_polled(doc, &NO_POLL)
}

/// Like [`parse`], calling `poll` at least every [`POLL_BYTES`] bytes scanned, now and in every
/// later walk of the returned value.
pub(crate) fn parse_polled<'a>(doc: &'a [u8], poll: &'a dyn Poll) -> Result<Value<'a>> {
    if let Err(e) = core::str::from_utf8(doc) {
        return Err(err(e.valid_up_to(), "invalid UTF-8"));
    }
    let mut c = Cursor {
        doc,
        pos: 0,
        poll,
        mark: 0,
    };
    c.ws();
    let start = c.pos;
    c.value(0)?;
    let end = c.pos;
    c.ws();
    if c.pos != doc.len() {
        return Err(err(c.pos, "trailing bytes"));
    }
    Ok(Value {
        doc,
        start,
        end,
        poll,
    })
}

/// The kind of a JSON value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `{...}`
    Object,
    /// `[...]`
    Array,
    /// `"..."`
    String,
    /// A number.
    Number,
    /// `true` or `false`.
    Bool,
    /// `null`.
    Null,
}

/// A validated JSON value: a span of its document.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Value<'a> {
    doc: &'a [u8],
    start: usize,
    end: usize,
    poll: &'a dyn Poll,
}

impl<'a> Value<'a> {
    /// The raw bytes of the value.
    pub(crate) fn raw(&self) -> &'a [u8] {
        self.doc.get(self.start..self.end).unwrap_or(&[])
    }

    /// The kind of the value.
    pub(crate) fn kind(&self) -> Kind {
        match self.doc.get(self.start) {
            Some(b'{') => Kind::Object,
            Some(b'[') => Kind::Array,
            Some(b'"') => Kind::String,
            Some(b't' | b'f') => Kind::Bool,
            Some(b'n') => Kind::Null,
            _ => Kind::Number,
        }
    }

    fn cursor_inside(&self) -> Cursor<'a> {
        let pos = self.start.saturating_add(1);
        Cursor {
            doc: self.doc,
            pos,
            poll: self.poll,
            mark: pos,
        }
    }

    /// The value as an object.
    pub(crate) fn as_object(&self) -> Result<Object<'a>> {
        match self.kind() {
            Kind::Object => Ok(Object { v: *self }),
            _ => Err(err(self.start, "expected object")),
        }
    }

    /// The value as an array.
    pub(crate) fn as_array(&self) -> Result<Array<'a>> {
        match self.kind() {
            Kind::Array => Ok(Array { v: *self }),
            _ => Err(err(self.start, "expected array")),
        }
    }

    /// The value as a string.
    pub(crate) fn as_str(&self) -> Result<Str<'a>> {
        match self.kind() {
            Kind::String => Ok(Str { v: *self }),
            _ => Err(err(self.start, "expected string")),
        }
    }

    /// The value as a boolean.
    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "parsed and tested; no field PuzzleFS reads is a boolean"
        )
    )]
    pub(crate) fn as_bool(&self) -> Result<bool> {
        match self.raw() {
            b"true" => Ok(true),
            b"false" => Ok(false),
            _ => Err(err(self.start, "expected boolean")),
        }
    }

    /// The value as a signed integer; fractions, exponents and overflow are errors.
    pub(crate) fn as_i64(&self) -> Result<i64> {
        let bad = || err(self.start, "expected integer");
        let raw = self.raw();
        let (neg, digits) = match raw.strip_prefix(b"-") {
            Some(d) => (true, d),
            None => (false, raw),
        };
        if digits.is_empty() {
            return Err(bad());
        }
        let mut v: i64 = 0;
        for &c in digits {
            if !c.is_ascii_digit() {
                return Err(bad());
            }
            let d = i64::from(c.wrapping_sub(b'0'));
            v = v.checked_mul(10).ok_or_else(bad)?;
            v = if neg {
                v.checked_sub(d)
            } else {
                v.checked_add(d)
            }
            .ok_or_else(bad)?;
        }
        Ok(v)
    }

    /// The value as an unsigned integer; fractions, exponents, negative
    /// numbers and overflow are errors.
    pub(crate) fn as_u64(&self) -> Result<u64> {
        let bad = || err(self.start, "expected unsigned integer");
        let raw = self.raw();
        if raw.is_empty() {
            return Err(bad());
        }
        let mut v: u64 = 0;
        for &c in raw {
            if !c.is_ascii_digit() {
                return Err(bad());
            }
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(c.wrapping_sub(b'0'))))
                .ok_or_else(bad)?;
        }
        Ok(v)
    }
}

/// A JSON object.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Object<'a> {
    v: Value<'a>,
}

impl<'a> Object<'a> {
    /// Calls `f` for each member in document order.
    pub(crate) fn for_each<B>(
        &self,
        mut f: impl FnMut(Str<'a>, Value<'a>) -> ControlFlow<B>,
    ) -> Result<ControlFlow<B>> {
        for_each_item(self.v, b'}', "expected ',' or '}'", |c| {
            let kstart = c.pos;
            c.skip_string()?;
            let key = Str {
                v: c.span_from(kstart),
            };
            c.ws();
            c.expect_byte(b':', "expected ':'")?;
            c.ws();
            let vstart = c.pos;
            c.skip_value()?;
            Ok(f(key, c.span_from(vstart)))
        })
    }

    /// Looks up `key`. A key present more than once is an error.
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Value<'a>>> {
        let [v] = self.get_all([key])?;
        Ok(v)
    }

    /// Looks up several keys in one walk of the object. A key present more than once is an
    /// error.
    pub(crate) fn get_all<const N: usize>(
        &self,
        keys: [&[u8]; N],
    ) -> Result<[Option<Value<'a>>; N]> {
        let mut found: [Option<Value<'a>>; N] = [None; N];
        let mut dup: Option<usize> = None;
        let r = self.for_each(|k, v| {
            for (key, slot) in keys.iter().zip(found.iter_mut()) {
                if k.eq_bytes(key) {
                    if slot.is_some() {
                        dup = Some(k.v.start);
                        return ControlFlow::Break(());
                    }
                    *slot = Some(v);
                }
            }
            ControlFlow::Continue(())
        })?;
        match (r, dup) {
            (ControlFlow::Break(()), Some(at)) => Err(err(at, "duplicate key")),
            _ => Ok(found),
        }
    }

    /// Looks up `key`, which must be present.
    pub(crate) fn require(&self, key: &'static [u8], what: &'static str) -> Result<Value<'a>> {
        self.get(key)?.ok_or_else(|| self.missing(what))
    }

    /// The error for a required member that is missing: `what` at the object's start.
    pub(crate) fn missing(&self, what: &'static str) -> Error {
        err(self.v.start, what)
    }
}

/// A JSON array.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Array<'a> {
    v: Value<'a>,
}

impl<'a> Array<'a> {
    /// Calls `f` for each element in order.
    pub(crate) fn for_each<B>(
        &self,
        mut f: impl FnMut(Value<'a>) -> ControlFlow<B>,
    ) -> Result<ControlFlow<B>> {
        for_each_item(self.v, b']', "expected ',' or ']'", |c| {
            let vstart = c.pos;
            c.skip_value()?;
            Ok(f(c.span_from(vstart)))
        })
    }
}

/// Walks the comma-separated items of the object or array `v` (already validated), which ends
/// with `close`: `item` parses one item at the cursor (leading whitespace skipped) and says
/// whether to go on.
fn for_each_item<'a, B>(
    v: Value<'a>,
    close: u8,
    what: &'static str,
    mut item: impl FnMut(&mut Cursor<'a>) -> Result<ControlFlow<B>>,
) -> Result<ControlFlow<B>> {
    let mut c = v.cursor_inside();
    c.ws();
    if c.peek() == Some(close) {
        return Ok(ControlFlow::Continue(()));
    }
    loop {
        c.ws();
        if let ControlFlow::Break(b) = item(&mut c)? {
            return Ok(ControlFlow::Break(b));
        }
        c.ws();
        match c.peek() {
            Some(b',') => c.bump(),
            Some(x) if x == close => return Ok(ControlFlow::Continue(())),
            _ => return Err(err(c.pos, what)),
        }
    }
}

/// A JSON string, decoded on demand.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Str<'a> {
    v: Value<'a>,
}

impl<'a> Str<'a> {
    /// Calls `f` with each decoded character.
    fn for_each_char<B>(
        &self,
        mut f: impl FnMut(char) -> ControlFlow<B>,
    ) -> Result<ControlFlow<B>> {
        let mut c = self.v.cursor_inside();
        while let Some(ch) = c.string_char()? {
            if let ControlFlow::Break(b) = f(ch) {
                return Ok(ControlFlow::Break(b));
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    /// Whether the decoded string equals `key` (compared as UTF-8 bytes).
    pub(crate) fn eq_bytes(&self, key: &[u8]) -> bool {
        // Without escapes the string's bytes are its UTF-8 encoding.
        let raw = self.v.raw();
        if let Some(inner) = raw.get(1..raw.len().saturating_sub(1)) {
            if !inner.contains(&b'\\') {
                return inner == key;
            }
        }
        let mut rest = key;
        let r = self.for_each_char(|ch| {
            let mut buf = [0u8; 4];
            let enc = ch.encode_utf8(&mut buf).as_bytes();
            match rest.strip_prefix(enc) {
                Some(r) => {
                    rest = r;
                    ControlFlow::Continue(())
                }
                None => ControlFlow::Break(()),
            }
        });
        matches!(r, Ok(ControlFlow::Continue(()))) && rest.is_empty()
    }

    /// Decodes the string as UTF-8 into `out` and returns the used part.
    pub(crate) fn decode<'b>(&self, out: &'b mut [u8]) -> Result<&'b [u8]> {
        let mut len = 0usize;
        let start = self.v.start;
        let r = self.for_each_char(|ch| {
            let mut buf = [0u8; 4];
            let enc = ch.encode_utf8(&mut buf).as_bytes();
            let end = len.saturating_add(enc.len());
            match out.get_mut(len..end) {
                Some(dst) => {
                    dst.copy_from_slice(enc);
                    len = end;
                    ControlFlow::Continue(())
                }
                None => ControlFlow::Break(()),
            }
        })?;
        if r.is_break() {
            return Err(err(start, "string too long"));
        }
        Ok(out.get(..len).unwrap_or(&[]))
    }
}
