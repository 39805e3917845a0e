//! Copying an image from one layout to another: how `strata save --format oci` writes an OCI
//! image layout directory (skopeo's `oci:DIR:NAME:TAG`). The target is an ordinary store, so
//! saving into an existing layout adds to it, blobs already there are not copied again, and a
//! killed copy leaves the target's index as it was (blobs first, index last, atomically).

use super::{ResolvedImage, Store};
use crate::reference::ImageRef;
use crate::Result;
use oci_spec::image::Descriptor;

impl Store {
    /// Copies `img` (resolved in `from`) with every blob it needs, verified by digest, and
    /// tags it `tags` here. Returns the manifest descriptor.
    pub fn copy_image_from(&self, from: &Store, img: &ResolvedImage, tags: &[ImageRef]) -> Result<Descriptor> {
        let blobs = img.manifest.layers().iter().chain([img.manifest.config(), &img.manifest_descriptor]);
        for d in blobs {
            if !self.has_blob(d.digest()) {
                self.put_blob(from.open_blob(d.digest())?, Some(d.digest()))?;
            }
        }
        self.tag_manifest(&img.manifest_descriptor, tags)?;
        Ok(img.manifest_descriptor.clone())
    }
}

#[cfg(test)]
mod tests {
    use crate::reference::ImageRef;
    use crate::store::tests::new_image;
    use crate::store::Store;

    #[test]
    fn copies_into_a_new_or_existing_layout() {
        let dir = tempfile::tempdir().unwrap();
        let src = Store::open_or_create(dir.path().join("src")).unwrap();
        let a = new_image(&src, "a");
        let b = new_image(&src, "b");
        src.put_image(&a, &[ImageRef::parse("a:1").unwrap()]).unwrap();
        src.put_image(&b, &[ImageRef::parse("b:1").unwrap()]).unwrap();
        let out = Store::open_or_create(dir.path().join("out")).unwrap();
        for name in ["a:1", "b:1"] {
            let img = src.resolve(name).unwrap();
            out.copy_image_from(&src, &img, &[ImageRef::parse(name).unwrap()]).unwrap();
            // Idempotent: a second copy finds every blob and rewrites only the index.
            out.copy_image_from(&src, &img, &[ImageRef::parse(name).unwrap()]).unwrap();
        }
        let listed: Vec<String> = out.list().unwrap().iter().map(|e| e.reference.to_string()).collect();
        assert_eq!(listed, ["a:1", "b:1"]);
        for name in ["a:1", "b:1"] {
            let (x, y) = (src.resolve(name).unwrap(), out.resolve(name).unwrap());
            assert_eq!(x.manifest_descriptor.digest(), y.manifest_descriptor.digest());
            for l in y.manifest.layers() {
                assert_eq!(out.read_blob(l.digest()).unwrap(), src.read_blob(l.digest()).unwrap());
            }
        }
    }
}
