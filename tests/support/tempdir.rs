//! A temporary directory for one end-to-end test, shared by the tests that run the real binary.

use std::path::PathBuf;

/// A temporary directory, removed on drop unless the test failed (then its path is printed so
/// the logs and traces in it can be read).
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new directory named after the test, the process and the clock.
    #[allow(clippy::disallowed_methods)] // A unique name from the clock.
    pub fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path =
            std::env::temp_dir().join(format!("sipreg-e2e-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create the temporary directory");
        TempDir(path)
    }

    /// `name` inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept for inspection: {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
