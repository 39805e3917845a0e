//! Copying an image from one layout to another: how `strata save --format oci` writes an OCI
//! image layout directory (skopeo's `oci:DIR:NAME:TAG`). The target is an ordinary store, so
//! saving into an existing layout adds to it, blobs already there are not copied again, and a
//! killed copy leaves the target's index as it was (blobs first, index last, atomically).

use super::{ResolvedImage, Store, REF_NAME_ANNOTATION};
use crate::reference::ImageRef;
use crate::{Error, Result};
use oci_spec::image::Descriptor;
use std::collections::HashMap;

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

    /// Copies `img` like [`Store::copy_image_from`] and names it `ref_name` exactly as
    /// given (skopeo's `oci:DIR:REF`, where REF may be a bare tag such as `latest` rather
    /// than this store's `NAME:TAG`), replacing what that name named.
    pub fn copy_image_as(&self, from: &Store, img: &ResolvedImage, ref_name: &str) -> Result<Descriptor> {
        self.copy_image_from(from, img, &[])?;
        super::blob::sync_dir(&self.blobs_dir())?;
        let _lock = self.lock()?;
        let mut entries = self.read_index()?.manifests().clone();
        entries.retain(|d| super::ref_name(d) != Some(ref_name));
        let mut d = Descriptor::new(img.manifest_descriptor.media_type().clone(), img.manifest_descriptor.size(), img.manifest_descriptor.digest().clone());
        d.set_annotations(Some(HashMap::from([(REF_NAME_ANNOTATION.to_string(), ref_name.to_string())])));
        entries.push(d);
        self.write_index(entries)?;
        Ok(img.manifest_descriptor.clone())
    }

    /// The image an OCI layout names `ref_name` exactly (any string, as skopeo's
    /// `oci:DIR:REF`); an empty `ref_name` means the layout's only image.
    pub fn resolve_ref_name(&self, ref_name: &str) -> Result<ResolvedImage> {
        let index = self.read_index()?;
        let found: Vec<&Descriptor> = if ref_name.is_empty() {
            index.manifests().iter().collect()
        } else {
            index.manifests().iter().filter(|d| super::ref_name(d) == Some(ref_name)).collect()
        };
        match found.as_slice() {
            [one] => {
                let mut desc = (*one).clone();
                desc.set_annotations(None);
                let tag = super::ref_name(one).and_then(|n| ImageRef::parse(n).ok());
                self.load(desc, tag, ref_name)
            }
            _ => {
                let names: Vec<&str> = index.manifests().iter().filter_map(super::ref_name).collect();
                let listed = if names.is_empty() { "no ref names".to_string() } else { format!("the ref names {}", names.join(", ")) };
                let dir = self.root.display();
                let hint = if names.is_empty() {
                    "hint: a layout's image is chosen by its ref name (org.opencontainers.image.ref.name); write one image per layout, or name them".to_string()
                } else {
                    format!("hint: choose one: oci:{dir}:REF (REF one of the names above)")
                };
                let what = match (ref_name.is_empty(), index.manifests().len()) {
                    (true, 0) => return Err(Error::NotInLayout(format!("the OCI layout {dir} lists no image"))),
                    (true, n) => format!("the OCI layout {dir} lists {n} images and no reference was given; it has {listed}"),
                    (false, _) => format!("the OCI layout {dir} has no image named {ref_name}; it has {listed}"),
                };
                Err(Error::NotInLayout(format!("{what}\n{hint}")))
            }
        }
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

    #[test]
    fn a_layout_of_several_images_needs_a_ref_name_and_says_which() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Store::open_or_create(dir.path()).unwrap();
        let empty = layout.resolve_ref_name("").unwrap_err().to_string();
        assert!(empty.contains("lists no image") && !empty.contains("hint"), "{empty}");
        for name in ["a:1", "b:1"] {
            layout.put_image(&new_image(&layout, name), &[ImageRef::parse(name).unwrap()]).unwrap();
        }
        let none = layout.resolve_ref_name("").unwrap_err().to_string();
        assert!(none.contains("lists 2 images and no reference was given"), "{none}");
        assert!(none.contains("a:1, b:1") && none.contains(&format!("hint: choose one: oci:{}:REF", dir.path().display())), "{none}");
        let wrong = layout.resolve_ref_name("c:1").unwrap_err().to_string();
        assert!(wrong.contains("has no image named c:1; it has the ref names a:1, b:1"), "{wrong}");
        assert!(!wrong.contains("not found in the store"), "{wrong}");
        assert_eq!(layout.resolve_ref_name("b:1").unwrap().reference.map(|r| r.to_string()), Some("b:1".to_string()));
    }
}
