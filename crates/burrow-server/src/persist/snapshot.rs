//! Binary snapshots, written while writes continue.
//!
//! ```text
//! header  "BSNP" | version u16 | 0 u16 | shards u32 | 0 u32 | term u64 | created unix ms u64 | crc32 u32
//! block   length u32 | crc32 u32 | body (length bytes)
//!   body  1 (entries) | shard u32 | covers index u64 | count u32 | entry...
//!         2 (end)     | total entries u64 | shard images u32
//! entry   type u8 (0 string, 1 integer, 2 deque) | key len u16 | key | expire_at u64 (unix ms, 0 = none)
//!         string: len u32, bytes | integer: i64 | deque: count u32, then per item len u32, bytes
//! ```
//! All integers big-endian. Shards are exported one at a time, each under
//! its own lock only; a shard's blocks carry the log index its image covers
//! (every op on that shard up to it, none after). The snapshot as a whole
//! "covers" the smallest of those. A file without its end block is invalid.
//! Written to a temp file, fsynced, renamed, directory fsynced: a crash at
//! any point leaves the previous snapshot intact.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use byteorder::{BigEndian, ByteOrder};
use thiserror::Error;

use super::fs::{FileSystem, FileWriter};
use super::wal::WalError;
use crate::store::{Entry, List, Store, Value, ValueRef};

pub(super) const SNAPSHOT_MAGIC: &[u8; 4] = b"BSNP";
pub(super) const SNAPSHOT_VERSION: u16 = 1;
const HEADER_LEN: usize = 32;
const BLOCK_ENTRIES: u8 = 1;
const BLOCK_END: u8 = 2;
/// Blocks are cut at about this size.
const BLOCK_TARGET: usize = 1 << 20;
/// No valid block is larger than this (one entry can hold a large deque).
const MAX_BLOCK: u32 = 1 << 31;

#[derive(Debug, Error)]
pub enum SnapshotError {
    #[error("{op} {path}")]
    Io { op: &'static str, path: PathBuf, source: std::io::Error },
    /// `reason` says what is wrong at `offset`, for the operator: it is
    /// built once where the bytes were found wanting and only ever shown.
    #[error("{path}: corrupt snapshot at byte offset {offset}: {reason}")]
    Corrupt { path: PathBuf, offset: u64, reason: String },
    /// The WAL could not be made to hold every record the snapshot holds,
    /// so it was not published (recovery must always see a prefix).
    #[error("cannot publish {path} before the WAL holds its records")]
    Unpublished { path: PathBuf, source: WalError },
}

/// Why one snapshot entry does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
enum EntryError {
    #[error("truncated")]
    Truncated,
    #[error("empty deque")]
    EmptyDeque,
    #[error("unknown entry type {0}")]
    UnknownType(u8),
}

/// What a snapshot file says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotMeta {
    pub shards: u32,
    /// Per shard (as numbered when written): the log index its image covers.
    pub covers: Vec<u64>,
    pub term: u64,
    pub created_ms: u64,
    pub entries: u64,
}

impl SnapshotMeta {
    /// Every record up to this index is contained in the snapshot.
    pub fn min_cover(&self) -> u64 {
        self.covers.iter().copied().min().unwrap_or(0)
    }
    pub fn max_cover(&self) -> u64 {
        self.covers.iter().copied().max().unwrap_or(0)
    }
}

/// The result of writing a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SnapshotInfo {
    pub path: PathBuf,
    /// The index the snapshot covers (its smallest shard index).
    pub index: u64,
    pub bytes: u64,
    pub entries: u64,
    pub duration: Duration,
}

pub fn snapshot_name(index: u64) -> String {
    format!("snapshot-{index:020}.snap")
}

/// Rewrites the index a snapshot file's first shard image covers (fixing
/// its block CRC): builds the uneven images a snapshot taken during writes
/// has, for tests. `bytes` must be a valid snapshot file.
pub fn relabel_first_cover(bytes: &mut [u8], covers: u64) {
    let block = HEADER_LEN + 4;
    let len = BigEndian::read_u32(&bytes[block..block + 4]) as usize;
    let body = block + 8;
    BigEndian::write_u64(&mut bytes[body + 5..body + 13], covers);
    let crc = crc32fast::hash(&bytes[body..body + len]);
    BigEndian::write_u32(&mut bytes[block + 4..block + 8], crc);
}

/// Snapshot files in `dir`, ordered by covered index.
pub(crate) fn list_snapshots(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    super::numbered_files(dir, "snapshot-", ".snap")
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io { op, path: path.to_owned(), source }
}

fn encode_entry(e: &Entry, out: &mut Vec<u8>) {
    let key = e.key();
    let (tag, value_len) = match e.value() {
        ValueRef::Str(s) => (0u8, 4 + s.len()),
        ValueRef::Int(_) => (1, 8),
        ValueRef::List(l) => (2, 4 + l.iter().map(|v| 4 + v.len()).sum::<usize>()),
    };
    out.reserve(1 + 2 + key.len() + 8 + value_len);
    out.push(tag);
    out.extend_from_slice(&(key.len() as u16).to_be_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&e.expire_at().to_be_bytes());
    match e.value() {
        ValueRef::Str(s) => {
            out.extend_from_slice(&(s.len() as u32).to_be_bytes());
            out.extend_from_slice(s);
        }
        ValueRef::Int(i) => out.extend_from_slice(&i.to_be_bytes()),
        ValueRef::List(l) => {
            out.extend_from_slice(&(l.len() as u32).to_be_bytes());
            for v in l.iter() {
                out.extend_from_slice(&(v.len() as u32).to_be_bytes());
                out.extend_from_slice(v);
            }
        }
    }
}

/// A block body under construction: kind, shard, covers (patched later), count.
fn new_entries_block(shard: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(BLOCK_TARGET + 4096);
    b.push(BLOCK_ENTRIES);
    b.extend_from_slice(&shard.to_be_bytes());
    b.extend_from_slice(&[0u8; 8]);
    b.extend_from_slice(&[0u8; 4]);
    b
}

fn write_block(w: &mut impl Write, body: &[u8]) -> std::io::Result<u64> {
    w.write_all(&(body.len() as u32).to_be_bytes())?;
    w.write_all(&crc32fast::hash(body).to_be_bytes())?;
    w.write_all(body)?;
    Ok(8 + body.len() as u64)
}

/// What [`encode_snapshot`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Encoded {
    pub bytes: u64,
    pub entries: u64,
    /// Smallest and largest index a shard image covers.
    pub min_cover: u64,
    pub max_cover: u64,
}

/// Encodes a snapshot of `store` (the file format above) into `w`, shard by
/// shard, each under its own lock only. Entries already expired at `now_ms`
/// are left out (`now_ms` 0 keeps them all). Used for snapshot files and,
/// unchanged, for a full resync's stream to a follower.
pub(crate) fn encode_snapshot(
    store: &Store,
    term: u64,
    now_ms: u64,
    w: &mut impl Write,
) -> std::io::Result<Encoded> {
    let shards = store.shard_count() as u32;
    let mut header = [0u8; HEADER_LEN + 4];
    header[..4].copy_from_slice(SNAPSHOT_MAGIC);
    BigEndian::write_u16(&mut header[4..6], SNAPSHOT_VERSION);
    BigEndian::write_u32(&mut header[8..12], shards);
    BigEndian::write_u64(&mut header[16..24], term);
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    BigEndian::write_u64(&mut header[24..32], created);
    let crc = crc32fast::hash(&header[..HEADER_LEN]);
    BigEndian::write_u32(&mut header[HEADER_LEN..], crc);
    w.write_all(&header)?;
    let mut bytes = header.len() as u64;
    let mut total = 0u64;
    let mut min_cover = u64::MAX;
    let mut max_cover = 0u64;
    for s in 0..shards {
        let mut blocks: Vec<(Vec<u8>, u32)> = Vec::new();
        let mut cur = new_entries_block(s);
        let mut count = 0u32;
        let covers = store.export_shard(s as usize, |e| {
            if now_ms != 0 && e.is_expired(now_ms) {
                return;
            }
            encode_entry(e, &mut cur);
            count += 1;
            if cur.len() >= BLOCK_TARGET {
                blocks.push((std::mem::replace(&mut cur, new_entries_block(s)), count));
                count = 0;
            }
        });
        blocks.push((cur, count));
        min_cover = min_cover.min(covers);
        max_cover = max_cover.max(covers);
        for (mut body, n) in blocks {
            BigEndian::write_u64(&mut body[5..13], covers);
            BigEndian::write_u32(&mut body[13..17], n);
            total += n as u64;
            bytes += write_block(w, &body)?;
        }
    }
    let mut end = vec![BLOCK_END];
    end.extend_from_slice(&total.to_be_bytes());
    end.extend_from_slice(&shards.to_be_bytes());
    bytes += write_block(w, &end)?;
    let min_cover = if min_cover == u64::MAX { 0 } else { min_cover };
    Ok(Encoded { bytes, entries: total, min_cover, max_cover })
}

/// Writes a snapshot of `store` into `dir` and returns where and what.
/// Entries already expired at `now_ms` are left out.
/// `before_publish(max covered index)` runs after the file is complete and
/// fsynced, before it replaces the previous snapshot; the server uses it to
/// make sure the WAL already holds every record the snapshot contains.
#[cfg(test)]
pub(crate) fn write_snapshot(
    store: &Store,
    dir: &Path,
    term: u64,
    now_ms: u64,
    before_publish: impl FnOnce(u64) -> Result<(), WalError>,
) -> Result<SnapshotInfo, SnapshotError> {
    write_snapshot_with(&super::StdFileSystem, store, dir, term, now_ms, before_publish)
}

/// [`write_snapshot`] through `fs`. A failure at any step removes the
/// temporary file and leaves the previous snapshot in place.
pub(crate) fn write_snapshot_with(
    fs: &dyn FileSystem,
    store: &Store,
    dir: &Path,
    term: u64,
    now_ms: u64,
    before_publish: impl FnOnce(u64) -> Result<(), WalError>,
) -> Result<SnapshotInfo, SnapshotError> {
    let started = Instant::now();
    let tmp = dir.join(format!("snapshot-{}.tmp", std::process::id()));
    let written = write_temp(fs, store, &tmp, term, now_ms).and_then(|enc| {
        before_publish(enc.max_cover)
            .map(|()| enc)
            .map_err(|source| SnapshotError::Unpublished { path: tmp.clone(), source })
    });
    let Encoded { bytes, entries: total, min_cover, .. } = match written {
        Ok(enc) => enc,
        Err(e) => {
            let _ = fs.remove(&tmp);
            return Err(e);
        }
    };
    let index = min_cover;
    let path = dir.join(snapshot_name(index));
    if let Err(e) = fs.rename(&tmp, &path) {
        let _ = fs.remove(&tmp);
        return Err(SnapshotError::Io { op: "rename", path: tmp, source: e });
    }
    fs.sync_dir(dir).map_err(io("fsync directory", dir))?;
    // Older snapshots are now redundant.
    if let Ok(all) = list_snapshots(dir) {
        for (i, old) in all {
            if i < index {
                let _ = fs.remove(&old);
            }
        }
    }
    Ok(SnapshotInfo { path, index, bytes, entries: total, duration: started.elapsed() })
}

/// Writes the snapshot file `tmp` and fsyncs it.
fn write_temp(
    fs: &dyn FileSystem,
    store: &Store,
    tmp: &Path,
    term: u64,
    now_ms: u64,
) -> Result<Encoded, SnapshotError> {
    let file = fs.create(tmp).map_err(io("create", tmp))?;
    let mut w = BufWriter::with_capacity(1 << 20, FileWriter::new(file));
    let encoded = encode_snapshot(store, term, now_ms, &mut w).map_err(io("write", tmp))?;
    let w = w.into_inner().map_err(|e| SnapshotError::Io {
        op: "write",
        path: tmp.to_owned(),
        source: e.into_error(),
    })?;
    w.file().sync_data().map_err(io("fsync", tmp))?;
    Ok(encoded)
}

/// Reads a snapshot, handing every entry not expired at `now_ms` to `load`
/// (`now_ms` 0: every entry; recovery needs them all, see `recover`).
pub fn read_snapshot(
    path: &Path,
    now_ms: u64,
    load: impl FnMut(Entry),
) -> Result<SnapshotMeta, SnapshotError> {
    let file = File::open(path).map_err(io("open", path))?;
    let file_len = file.metadata().map_err(io("stat", path))?.len();
    read_snapshot_from(BufReader::with_capacity(1 << 20, file), file_len, path, now_ms, load)
}

/// Like [`read_snapshot`], from any reader holding `file_len` bytes (a
/// snapshot received from the leader in memory); `path` names it in errors.
pub(crate) fn read_snapshot_from(
    mut r: impl Read,
    file_len: u64,
    path: &Path,
    now_ms: u64,
    mut load: impl FnMut(Entry),
) -> Result<SnapshotMeta, SnapshotError> {
    let corrupt =
        |offset: u64, reason: String| SnapshotError::Corrupt { path: path.to_owned(), offset, reason };
    // A read that comes up short is corruption (`reason`) at `offset`; any
    // other read error is the reader's (the disk's, or the leader's stream's).
    let short = |offset: u64, reason: String| {
        move |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => corrupt(offset, reason),
            _ => SnapshotError::Io { op: "read", path: path.to_owned(), source: e },
        }
    };
    let mut header = [0u8; HEADER_LEN + 4];
    r.read_exact(&mut header).map_err(short(0, "header: file ends early".into()))?;
    if &header[..4] != SNAPSHOT_MAGIC {
        return Err(corrupt(0, format!("magic {:02x?} is not {SNAPSHOT_MAGIC:?}", &header[..4])));
    }
    let version = BigEndian::read_u16(&header[4..6]);
    if version != SNAPSHOT_VERSION {
        return Err(corrupt(
            4,
            format!("version {version} is not supported (this build reads {SNAPSHOT_VERSION})"),
        ));
    }
    let stored = BigEndian::read_u32(&header[HEADER_LEN..]);
    if stored != crc32fast::hash(&header[..HEADER_LEN]) {
        return Err(corrupt(0, "header CRC mismatch".into()));
    }
    let shards = BigEndian::read_u32(&header[8..12]);
    if shards == 0 || !shards.is_power_of_two() || shards > 65536 {
        return Err(corrupt(8, format!("shard count {shards} is impossible")));
    }
    let mut meta = SnapshotMeta {
        shards,
        covers: vec![u64::MAX; shards as usize],
        term: BigEndian::read_u64(&header[16..24]),
        created_ms: BigEndian::read_u64(&header[24..32]),
        entries: 0,
    };
    let mut offset = header.len() as u64;
    let mut body = Vec::new();
    loop {
        let mut bh = [0u8; 8];
        r.read_exact(&mut bh)
            .map_err(short(offset, "block header: file ends early (no end block)".into()))?;
        let len = BigEndian::read_u32(&bh[..4]);
        if len == 0 || len > MAX_BLOCK {
            return Err(corrupt(offset, format!("block length {len} is impossible")));
        }
        // Checked before allocating: a corrupt length must not cost memory.
        let left = file_len.saturating_sub(offset + 8);
        if u64::from(len) > left {
            return Err(corrupt(
                offset,
                format!("block of {len} bytes, but the file ends {left} bytes later"),
            ));
        }
        body.resize(len as usize, 0);
        r.read_exact(&mut body).map_err(short(offset, format!("block of {len} bytes: file ends early")))?;
        if BigEndian::read_u32(&bh[4..]) != crc32fast::hash(&body) {
            return Err(corrupt(offset, "block CRC mismatch".into()));
        }
        let at = |reason: String| corrupt(offset, reason);
        match body[0] {
            BLOCK_ENTRIES => {
                if body.len() < 17 {
                    return Err(at("entries block too short".into()));
                }
                let shard = BigEndian::read_u32(&body[1..5]);
                let covers = BigEndian::read_u64(&body[5..13]);
                let count = BigEndian::read_u32(&body[13..17]);
                let slot = meta
                    .covers
                    .get_mut(shard as usize)
                    .ok_or_else(|| at(format!("shard {shard} out of range")))?;
                if *slot != u64::MAX && *slot != covers {
                    return Err(at(format!("shard {shard} has two different covered indexes")));
                }
                *slot = covers;
                let mut p = 17usize;
                for i in 0..count {
                    let (entry, used) =
                        decode_entry(&body[p..]).map_err(|e| at(format!("entry {i} of block: {e}")))?;
                    p += used;
                    if !entry.is_expired(now_ms) {
                        load(entry);
                    }
                }
                if p != body.len() {
                    return Err(at(format!("{} bytes after the last entry", body.len() - p)));
                }
                meta.entries += count as u64;
            }
            BLOCK_END => {
                if body.len() != 13 {
                    return Err(at("end block has the wrong size".into()));
                }
                let total = BigEndian::read_u64(&body[1..9]);
                if total != meta.entries {
                    return Err(at(format!(
                        "end block counts {total} entries, blocks held {}",
                        meta.entries
                    )));
                }
                if let Some(missing) = meta.covers.iter().position(|c| *c == u64::MAX) {
                    return Err(at(format!("shard {missing} has no image")));
                }
                let mut rest = [0u8; 1];
                if r.read(&mut rest).map_err(io("read", path))? != 0 {
                    return Err(corrupt(offset + 8 + len as u64, "bytes after the end block".into()));
                }
                return Ok(meta);
            }
            other => return Err(at(format!("unknown block kind {other}"))),
        }
        offset += 8 + len as u64;
    }
}

/// Decodes one entry; returns it and the bytes used.
fn decode_entry(b: &[u8]) -> Result<(Entry, usize), EntryError> {
    let mut p = 0usize;
    let mut take = |n: usize| -> Result<&[u8], EntryError> {
        if b.len() - p < n {
            return Err(EntryError::Truncated);
        }
        p += n;
        Ok(&b[p - n..p])
    };
    let tag = take(1)?[0];
    let klen = BigEndian::read_u16(take(2)?) as usize;
    let key = take(klen)?;
    let expire_at = BigEndian::read_u64(take(8)?);
    let entry = match tag {
        0 => {
            let n = BigEndian::read_u32(take(4)?) as usize;
            Entry::new(key, Value::Str(take(n)?), expire_at)
        }
        1 => Entry::new(key, Value::Int(BigEndian::read_i64(take(8)?)), expire_at),
        2 => {
            let n = BigEndian::read_u32(take(4)?) as usize;
            if n == 0 {
                return Err(EntryError::EmptyDeque);
            }
            let mut list = Box::new(List::with_capacity(n.min(b.len() / 4)));
            for _ in 0..n {
                let len = BigEndian::read_u32(take(4)?) as usize;
                list.push_back(take(len)?.to_vec().into_boxed_slice());
            }
            Entry::new(key, Value::List(list), expire_at)
        }
        t => return Err(EntryError::UnknownType(t)),
    };
    Ok((entry, p))
}
