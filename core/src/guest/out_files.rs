//! Sends the files a payload left in its `out_dir` to the host, in chunks
//! that fit a frame, up to a total cap (what is left out is reported).

use std::path::Path;

use super::Channel;
use crate::protocol::Message;

/// Most bytes sent per payload; a payload's own results rarely need more.
pub const TOTAL_CAP: u64 = 64 << 20;
const CHUNK: usize = 1 << 20;
/// Deepest directory level walked (guards against symlink loops).
const MAX_DEPTH: usize = 8;

/// Sends every regular file under `dir` as `name/relative/path`.
pub fn send(ch: &mut Channel, dir: &Path, name: &str) {
    let mut files = Vec::new();
    walk(dir, dir, 0, &mut files);
    files.sort();
    let mut sent = 0u64;
    for rel in files {
        let path = format!("{name}/{rel}");
        let full = dir.join(&rel);
        let size = std::fs::metadata(&full).map(|m| m.len()).unwrap_or(0);
        if sent + size > TOTAL_CAP {
            let reason = format!("over the {} MiB cap of an out_dir", TOTAL_CAP >> 20);
            ch.send(&Message::OutFileSkipped { path, reason });
            continue;
        }
        match std::fs::read(&full) {
            Ok(data) => {
                sent += data.len() as u64;
                if data.is_empty() {
                    ch.send(&Message::OutFile { path: path.clone(), data: Vec::new() });
                }
                for chunk in data.chunks(CHUNK) {
                    ch.send(&Message::OutFile { path: path.clone(), data: chunk.to_vec() });
                }
            }
            Err(e) => ch.send(&Message::OutFileSkipped { path, reason: e.to_string() }),
        }
    }
}

fn walk(root: &Path, dir: &Path, depth: usize, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let Ok(kind) = e.file_type() else { continue };
        let path = e.path();
        if kind.is_dir() && depth < MAX_DEPTH {
            walk(root, &path, depth + 1, out);
        } else if kind.is_file() {
            if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
}
