//! What the store keeps per key: one compact allocation per entry.
//!
//! An [`Entry`] is a single thin pointer (8 bytes in the hash table) to one
//! heap block holding everything about the key:
//!
//! ```text
//! +-------------+-------+-------------+-----+--------------------+---------+
//! | total (u32) | flags | key len u16 | key | expire_at u64 (opt)| payload |
//! +-------------+-------+-------------+-----+--------------------+---------+
//! ```
//! `flags` holds the value kind (string, integer, list) and whether an expiry
//! is present. The payload is the string's bytes, the integer (8 bytes), or a
//! pointer to the boxed deque (8 bytes). One allocation per key instead of
//! three, and an 8-byte table slot instead of 48, is what keeps a 16-byte key
//! with a 32-byte value near 80 bytes of resident memory.
//!
//! **Access clock.** `--maxmemory-policy *-lru` needs to know when a key was
//! last used. The block has no spare byte, but the pointer does: user-space
//! addresses on 64-bit Linux (x86-64, AArch64) stay below 2^48 unless a
//! program asks the kernel for more with an `mmap` hint, which the allocator
//! does not, so the pointer's top 16 bits are always zero. They hold the
//! access clock ([`Entry::clock`]: seconds, modulo 2^16 — Redis keeps 24
//! bits of seconds in its object header). An entry stays 8 bytes and no
//! block grows; every dereference masks the tag off.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::collections::VecDeque;
use std::ptr::NonNull;
use std::sync::Arc;

/// A deque value.
pub(crate) type List = VecDeque<Box<[u8]>>;

/// What a list entry's payload points to: the deque and its version.
struct ListCell {
    items: List,
    version: ListVersion,
}

/// Tells a reader that copies a list in several lock holds (LRANGE, issue
/// 11) whether the list changed between them: `id` is unique to the deque
/// (drawn when the entry is built, so a list deleted and built again, even
/// at the same address, differs) and `writes` counts every mutable access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListVersion {
    id: u64,
    writes: u64,
}

/// Source of [`ListVersion::id`]s.
static NEXT_LIST_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

const HDR: usize = 4 + 1 + 2;
const KIND_MASK: u8 = 0b11;
const KIND_STR: u8 = 0;
const KIND_INT: u8 = 1;
const KIND_LIST: u8 = 2;
/// A string of [`SHARED_VALUE`] bytes or more: the payload is a handle
/// (address, length) to an `Arc<[u8]>`.
const KIND_SHARED: u8 = 3;
/// Strings this long or longer live in a refcounted block of their own,
/// so a GET takes a handle under the shard lock and copies the bytes
/// after releasing it (issue 11, fairness: a 16 MiB copy held the shard
/// ~3 ms). Shorter ones stay inline in the entry, as compact as before
/// (copying 64 KiB takes ~10 µs).
pub(crate) const SHARED_VALUE: usize = 64 * 1024;
const F_TTL: u8 = 0b100;
/// glibc's per-allocation header, counted in `mem_size`.
const MALLOC_OVERHEAD: usize = 16;
/// The pointer's top bits that hold the access clock.
const CLOCK_SHIFT: u32 = 48;
const ADDR_MASK: usize = (1 << CLOCK_SHIFT) - 1;
const _: () = assert!(usize::BITS == 64, "the access clock lives in a 64-bit pointer's top bits");

/// One key and its value; `expire_at` is absolute unix ms, 0 = never.
pub struct Entry {
    /// The block's address in the low 48 bits, the access clock above.
    ptr: NonNull<u8>,
}

// SAFETY: an Entry uniquely owns its block (and the deque a list payload
// points to), exactly like a Box; nothing is shared between entries.
unsafe impl Send for Entry {}
unsafe impl Sync for Entry {}

/// The payload to build an entry with.
pub(crate) enum Value<'a> {
    Str(&'a [u8]),
    Int(i64),
    List(Box<List>),
}

/// A borrowed view of a value, handed to readers under the shard lock.
#[derive(Debug, Clone, Copy)]
pub enum ValueRef<'a> {
    Str(&'a [u8]),
    Int(i64),
    List(&'a List),
}

impl Entry {
    /// Builds an entry.
    ///
    /// # Panics
    /// If the key is over 65,535 bytes or the entry over 4 GiB. Neither
    /// can arrive: the wire format and `--max-key-bytes` bound keys to
    /// 65,535 bytes, `--max-value-bytes` and the snapshot's block size
    /// bound values to 2 GiB.
    pub(crate) fn new(key: &[u8], value: Value<'_>, expire_at: u64) -> Entry {
        match value {
            Value::Str(s) if s.len() >= SHARED_VALUE => {
                let raw = Arc::into_raw(Arc::<[u8]>::from(s));
                let mut handle = [0u8; 16];
                handle[..8].copy_from_slice(&(raw as *const u8 as usize).to_ne_bytes());
                handle[8..].copy_from_slice(&s.len().to_ne_bytes());
                Entry::block(key, KIND_SHARED, &handle, expire_at)
            }
            Value::Str(s) => Entry::block(key, KIND_STR, s, expire_at),
            Value::Int(i) => Entry::block(key, KIND_INT, &i.to_ne_bytes(), expire_at),
            Value::List(l) => {
                let id = NEXT_LIST_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let cell = Box::new(ListCell { items: *l, version: ListVersion { id, writes: 0 } });
                let raw = Box::into_raw(cell) as usize;
                Entry::block(key, KIND_LIST, &raw.to_ne_bytes(), expire_at)
            }
        }
    }

    /// Allocates the block of a `kind` entry whose payload bytes are
    /// `payload` (for a list or a shared string, the handle: the block
    /// then owns what it points to).
    #[inline]
    fn block(key: &[u8], kind: u8, payload: &[u8], expire_at: u64) -> Entry {
        let key_len = u16::try_from(key.len()).expect("key length checked by the codec");
        let ttl_len = if expire_at != 0 { 8 } else { 0 };
        let total = HDR + key.len() + ttl_len + payload.len();
        let total32 = u32::try_from(total).expect("entry size checked by the codec");
        let layout = Layout::from_size_align(total, 1).expect("valid layout");
        // SAFETY: `total` ≥ HDR > 0; every byte of the block is written below
        // before any is read.
        unsafe {
            let p = alloc(layout);
            let Some(ptr) = NonNull::new(p) else { handle_alloc_error(layout) };
            // Not reachable from input: see the module docs on the clock.
            assert!(
                p.addr() >> CLOCK_SHIFT == 0,
                "heap address {p:p} above 2^48: no room for the access clock"
            );
            let flags = kind | if expire_at != 0 { F_TTL } else { 0 };
            std::ptr::copy_nonoverlapping(total32.to_ne_bytes().as_ptr(), p, 4);
            *p.add(4) = flags;
            std::ptr::copy_nonoverlapping(key_len.to_ne_bytes().as_ptr(), p.add(5), 2);
            std::ptr::copy_nonoverlapping(key.as_ptr(), p.add(HDR), key.len());
            let mut at = HDR + key.len();
            if expire_at != 0 {
                std::ptr::copy_nonoverlapping(expire_at.to_ne_bytes().as_ptr(), p.add(at), 8);
                at += 8;
            }
            std::ptr::copy_nonoverlapping(payload.as_ptr(), p.add(at), payload.len());
            Entry { ptr }
        }
    }

    /// The block's address, the clock masked off.
    #[inline(always)]
    fn base(&self) -> *mut u8 {
        self.ptr.as_ptr().map_addr(|a| a & ADDR_MASK)
    }

    /// When the entry was last written or read, in seconds modulo 2^16
    /// ([`clock_at`]); 0 for an entry nothing has stamped.
    #[inline]
    pub(crate) fn clock(&self) -> u16 {
        (self.ptr.as_ptr().addr() >> CLOCK_SHIFT) as u16
    }

    /// Records an access at `clock` (see [`clock_at`]).
    #[inline(always)]
    pub(crate) fn touch(&mut self, clock: u16) {
        let tagged = self.base().map_addr(|a| a | (clock as usize) << CLOCK_SHIFT);
        // SAFETY: `base` is the non-null block address; or-ing bits in keeps it non-null.
        self.ptr = unsafe { NonNull::new_unchecked(tagged) };
    }

    /// The block's length (its first 4 bytes).
    #[inline(always)]
    fn total(&self) -> usize {
        // SAFETY: the first 4 bytes hold the block's length, written in `new`.
        unsafe { u32::from_ne_bytes(self.base().cast::<[u8; 4]>().read()) as usize }
    }

    // The accessors below read the header through `base` directly, not
    // through a slice of the block: one mask and no bounds checks on every
    // lookup and read (the header's layout is fixed by `new`).

    #[inline(always)]
    fn flags(&self) -> u8 {
        // SAFETY: byte 4 of every block is its flags (HDR = 7 bytes are always there).
        unsafe { *self.base().add(4) }
    }

    #[inline(always)]
    fn key_len(&self) -> usize {
        // SAFETY: bytes 5..7 of every block are the key's length.
        unsafe { u16::from_ne_bytes(self.base().add(5).cast::<[u8; 2]>().read()) as usize }
    }

    /// Offset of the payload within the block.
    #[inline(always)]
    fn payload_at(&self) -> usize {
        HDR + self.key_len() + if self.flags() & F_TTL != 0 { 8 } else { 0 }
    }

    #[inline(always)]
    fn payload(&self) -> &[u8] {
        let at = self.payload_at();
        // SAFETY: the payload runs from `at` to the block's end (`new`).
        unsafe { std::slice::from_raw_parts(self.base().add(at), self.total() - at) }
    }

    fn read_u64(b: &[u8]) -> u64 {
        u64::from_ne_bytes(b[..8].try_into().expect("8 bytes"))
    }

    /// A shared string's bytes (the pointer `Arc::into_raw` gave).
    fn shared_ptr(&self) -> *const [u8] {
        let p = self.payload();
        std::ptr::slice_from_raw_parts(
            Entry::read_u64(p) as usize as *const u8,
            Entry::read_u64(&p[8..]) as usize,
        )
    }

    /// A handle to the string's bytes if it is one of [`SHARED_VALUE`]
    /// bytes or more (kept in a refcounted block): what a reader takes
    /// under the lock to copy the bytes after releasing it.
    pub(crate) fn shared_str(&self) -> Option<Arc<[u8]>> {
        if self.flags() & KIND_MASK != KIND_SHARED {
            return None;
        }
        let raw = self.shared_ptr();
        // SAFETY: the entry holds one strong count of this Arc until Drop;
        // the handle returned gets a count of its own.
        unsafe {
            Arc::increment_strong_count(raw);
            Some(Arc::from_raw(raw))
        }
    }

    fn list_ptr(&self) -> *mut ListCell {
        Entry::read_u64(self.payload()) as usize as *mut ListCell
    }

    #[inline(always)]
    pub fn key(&self) -> &[u8] {
        // SAFETY: the key is the `key_len` bytes after the header (`new`).
        unsafe { std::slice::from_raw_parts(self.base().add(HDR), self.key_len()) }
    }

    #[inline]
    pub fn expire_at(&self) -> u64 {
        if self.flags() & F_TTL == 0 {
            return 0;
        }
        // SAFETY: with F_TTL, the 8 bytes after the key are the expiry (`new`).
        unsafe { u64::from_ne_bytes(self.base().add(HDR + self.key_len()).cast::<[u8; 8]>().read()) }
    }

    #[inline]
    pub fn value(&self) -> ValueRef<'_> {
        let kind = self.flags() & KIND_MASK;
        // The common case first, as before there were four kinds (callgrind).
        if kind == KIND_STR {
            return ValueRef::Str(self.payload());
        }
        match kind {
            KIND_INT => ValueRef::Int(Entry::read_u64(self.payload()) as i64),
            // SAFETY: the handle is the Arc this entry holds until Drop.
            KIND_SHARED => ValueRef::Str(unsafe { &*self.shared_ptr() }),
            // SAFETY: a list payload is the pointer produced by Box::into_raw
            // in `new`, owned by this entry until Drop.
            _ => ValueRef::List(unsafe { &(*self.list_ptr()).items }),
        }
    }

    /// The deque, if this entry holds one. Counts as a write to it
    /// ([`ListVersion`]) whether or not the caller changes anything.
    pub(crate) fn list_mut(&mut self) -> Option<&mut List> {
        if self.flags() & KIND_MASK != KIND_LIST {
            return None;
        }
        // SAFETY: as in `value`; `&mut self` makes the access unique.
        let cell = unsafe { &mut *self.list_ptr() };
        cell.version.writes += 1;
        Some(&mut cell.items)
    }

    /// The list's version, if this entry holds one: equal versions mean
    /// equal contents.
    pub(crate) fn list_version(&self) -> Option<ListVersion> {
        if self.flags() & KIND_MASK != KIND_LIST {
            return None;
        }
        // SAFETY: as in `value`.
        Some(unsafe { (*self.list_ptr()).version })
    }

    /// Overwrites an integer value in place; false if this is not an integer.
    pub(crate) fn set_int(&mut self, i: i64) -> bool {
        if self.flags() & KIND_MASK != KIND_INT {
            return false;
        }
        let at = self.payload_at();
        // SAFETY: an integer payload is the 8 bytes at `at`, inside the block.
        unsafe { std::ptr::copy_nonoverlapping(i.to_ne_bytes().as_ptr(), self.base().add(at), 8) };
        true
    }

    /// Sets the expiry; rebuilds the block only when one is added or removed.
    pub(crate) fn set_expire_at(&mut self, at: u64) {
        let has = self.flags() & F_TTL != 0;
        if has && at != 0 {
            let off = HDR + self.key_len();
            // SAFETY: the expiry is the 8 bytes at `off`, inside the block.
            unsafe { std::ptr::copy_nonoverlapping(at.to_ne_bytes().as_ptr(), self.base().add(off), 8) };
            return;
        }
        if !has && at == 0 {
            return;
        }
        // The payload moves as it is: bytes, or the handle of a list or a
        // shared string, which the new block then owns; this block is
        // marked a plain string so its Drop frees only itself.
        let kind = self.flags() & KIND_MASK;
        let rebuilt = Entry::block(self.key(), kind, self.payload(), at);
        // SAFETY: byte 4 is the flags; the payload's ownership passed above.
        unsafe { *self.base().add(4) = KIND_STR | (self.flags() & F_TTL) };
        let clock = self.clock();
        *self = rebuilt;
        self.touch(clock);
    }

    pub fn is_expired(&self, now_ms: u64) -> bool {
        let at = self.expire_at();
        at != 0 && at <= now_ms
    }

    /// The type name users see (TYPE, INFO): `string` or `list`.
    pub(crate) fn type_name(&self) -> &'static str {
        match self.flags() & KIND_MASK {
            KIND_LIST => "list",
            _ => "string",
        }
    }

    /// Approximate resident bytes: the block, its malloc header, the table
    /// slot, and for a deque its items. O(items) for deques.
    pub(crate) fn mem_size(&self) -> usize {
        let base = self.total() + MALLOC_OVERHEAD + std::mem::size_of::<Entry>() + 1;
        match self.flags() & KIND_MASK {
            // SAFETY: as in `value`.
            KIND_LIST => base + list_mem(unsafe { &(*self.list_ptr()).items }),
            // The Arc's block: its two counts, the bytes, its malloc header.
            KIND_SHARED => base + 16 + self.shared_ptr().len() + MALLOC_OVERHEAD,
            _ => base,
        }
    }
}

/// The access clock at `now_ms` (unix ms): whole seconds, modulo 2^16
/// (it wraps every 18.2 hours; an entry idle longer looks idle for the
/// remainder, as Redis's 24-bit clock does after 194 days).
pub(crate) fn clock_at(now_ms: u64) -> u16 {
    (now_ms / 1000) as u16
}

/// Seconds since `then` on the access clock, at clock `now`.
pub(crate) fn idle(now: u16, then: u16) -> u16 {
    now.wrapping_sub(then)
}

/// Bytes a deque holds beyond the entry block (64: the cell, 48 bytes
/// with its version, and its malloc header).
pub(crate) fn list_mem(l: &List) -> usize {
    64 + l.capacity() * 16 + l.iter().map(|v| list_item_mem(v.len())).sum::<usize>()
}

/// Bytes one deque item's own allocation holds.
pub(crate) fn list_item_mem(len: usize) -> usize {
    len + MALLOC_OVERHEAD
}

impl Drop for Entry {
    fn drop(&mut self) {
        match self.flags() & KIND_MASK {
            // SAFETY: the pointer came from Box::into_raw and is still owned here.
            KIND_LIST => drop(unsafe { Box::from_raw(self.list_ptr()) }),
            // SAFETY: the handle came from Arc::into_raw; this is the entry's count.
            KIND_SHARED => drop(unsafe { Arc::from_raw(self.shared_ptr()) }),
            _ => {}
        }
        let len = self.total();
        // SAFETY: allocated in `new` with exactly this layout.
        unsafe { dealloc(self.base(), Layout::from_size_align_unchecked(len, 1)) };
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("key", &String::from_utf8_lossy(self.key()))
            .field("value", &self.value())
            .field("expire_at", &self.expire_at())
            .finish()
    }
}

/// Parses a string value as a counter, the way INCR sees it: the canonical
/// decimal form of an i64 only (no `+`, spaces, leading zeros or `-0`), as
/// Redis does — so the digits GET returns afterwards are the same bytes.
pub(crate) fn parse_int(s: &[u8]) -> Option<i64> {
    let digits = s.strip_prefix(b"-").unwrap_or(s);
    let canonical = match digits {
        [] => false,
        [b'0'] => s.len() == 1,
        [first, ..] => *first != b'0',
    };
    if !canonical || s.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Formats a counter as the decimal string GET returns.
pub(crate) fn format_int(i: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut n = i.unsigned_abs();
    let mut pos = buf.len();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        pos -= 1;
        buf[pos] = b'-';
    }
    &buf[pos..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_format_and_parse_at_the_extremes() {
        let mut buf = [0u8; 20];
        for i in [0, 1, -1, 42, i64::MAX, i64::MIN] {
            let s = format_int(i, &mut buf).to_vec();
            assert_eq!(s, i.to_string().as_bytes());
            assert_eq!(parse_int(&s), Some(i));
        }
        for bad in [
            &b""[..],
            b"+1",
            b" 1",
            b"1 ",
            b"abc",
            b"9223372036854775808",
            b"1.5",
            b"007",
            b"-0",
            b"-",
            b"00",
        ] {
            assert_eq!(parse_int(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn every_kind_keeps_key_value_and_expiry_through_expiry_changes() {
        let list: Box<List> = Box::new([b"a".to_vec().into(), b"b".to_vec().into()].into_iter().collect());
        let mut entries = [
            Entry::new(b"s", Value::Str(b"hello"), 0),
            Entry::new(b"", Value::Str(b""), 7),
            Entry::new(b"i", Value::Int(-5), 0),
            Entry::new(b"l", Value::List(list), 9),
            Entry::new(b"big", Value::Str(&vec![7; SHARED_VALUE]), 0),
            Entry::new(b"", Value::Str(&vec![7; SHARED_VALUE - 1]), 3),
        ];
        for e in entries.iter_mut() {
            let key = e.key().to_vec();
            let before = format!("{:?}", e.value());
            for at in [0, 123, 456, 0, 0, 789] {
                e.set_expire_at(at);
                assert_eq!(e.expire_at(), at);
                assert_eq!(e.key(), key);
                assert_eq!(format!("{:?}", e.value()), before);
            }
        }
        assert!(entries[2].set_int(i64::MIN));
        assert!(matches!(entries[2].value(), ValueRef::Int(i64::MIN)));
        assert!(!entries[0].set_int(1));
        let before = entries[3].list_version().expect("a list");
        entries[3].list_mut().unwrap().push_back(b"c".to_vec().into());
        assert_ne!(entries[3].list_version(), Some(before), "a write is a new version");
        assert_eq!(entries[0].list_version(), None);
        assert_eq!(entries[3].type_name(), "list");
        assert!(matches!(entries[3].value(), ValueRef::List(l) if l.len() == 3));
        assert!(entries[0].list_mut().is_none());
        assert!(entries[1].is_expired(789) && !entries[1].is_expired(788));
    }

    /// A string of `SHARED_VALUE` bytes or more is kept in a refcounted
    /// block: a handle taken from it outlives the entry, and the entry
    /// counts the block in its size. Shorter strings stay inline.
    #[test]
    fn long_strings_are_shared_and_short_ones_inline() {
        let long = vec![b'x'; SHARED_VALUE];
        let e = Entry::new(b"k", Value::Str(&long), 0);
        let inline = Entry::new(b"k", Value::Str(&long[1..]), 0);
        assert!(inline.shared_str().is_none());
        assert!(e.mem_size() > inline.mem_size() + 16, "the shared block is counted");
        let handle = e.shared_str().expect("shared");
        assert!(matches!(e.value(), ValueRef::Str(s) if s == &long[..]));
        drop(e);
        assert_eq!(&handle[..], &long[..], "the handle outlives the entry");
        assert_eq!(Arc::strong_count(&handle), 1);
        let mut e = Entry::new(b"k", Value::Str(&long), 0);
        let handle = e.shared_str().expect("shared");
        e.set_expire_at(5);
        assert_eq!(Arc::strong_count(&handle), 2, "moved into the rebuilt block, not copied");
        assert!(std::ptr::eq(&e.shared_str().expect("shared")[..], &handle[..]));
    }

    #[test]
    fn an_entry_is_one_pointer() {
        assert_eq!(std::mem::size_of::<Entry>(), 8);
    }

    /// The clock rides in the pointer: stamping it changes nothing the
    /// entry holds, and it survives the rebuild an added TTL makes.
    #[test]
    fn the_access_clock_is_kept_beside_the_entry_not_in_it() {
        let list: Box<List> = Box::new([b"a".to_vec().into()].into_iter().collect());
        for mut e in [Entry::new(b"k", Value::Str(b"v"), 0), Entry::new(b"l", Value::List(list), 0)] {
            let (size, value) = (e.mem_size(), format!("{:?}", e.value()));
            assert_eq!(e.clock(), 0);
            for clock in [1, u16::MAX, 0x8000, 7] {
                e.touch(clock);
                assert_eq!(e.clock(), clock);
                assert_eq!((e.mem_size(), format!("{:?}", e.value())), (size, value.clone()));
            }
            let version = e.list_version();
            e.set_expire_at(99);
            assert_eq!((e.clock(), e.expire_at()), (7, 99));
            assert_eq!(e.list_version(), version, "the rebuilt block keeps the list's version");
        }
        assert_eq!(clock_at(65_536_000 + 3_999), 3);
        assert_eq!(idle(2, u16::MAX), 3, "the clock wraps");
    }
}
