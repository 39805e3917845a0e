//! Pushing several store images at once to one registry (`strata push --all`): every
//! distinct blob is handled once, by one task, with at most `max_parallel` tasks at once
//! across all the images; a blob the images share goes up once and is mounted into the
//! other repositories (cross-repository mount) instead of sent again.

use crate::client::{Access, Repo};
use crate::progress::{BlobEvent, BlobKind, BlobTransfer, Outcome, Progress, Silent};
use super::Prepared;
use crate::reference::Reference;
use crate::{parallel, Client, PushOptions, Pushed, Result};
use std::collections::HashMap;
use strata_oci::oci_spec::image::{Descriptor, Digest};
use strata_oci::store::Store;

/// One distinct blob and the images (indexes) that need it.
struct BlobJob {
    desc: Descriptor,
    kind: BlobKind,
    images: Vec<usize>,
}

impl Client {
    /// Pushes each store image `local` to its `remote` (all on this client's registries).
    /// Every image is read from the store before anything is sent, so a missing one fails
    /// the whole push up front. Then each distinct blob is one task: HEAD in every
    /// repository that needs it, uploaded once to the first that lacks it, mounted from a
    /// repository that has it into the others; `opts.max_parallel` tasks at once in all.
    /// Manifests go up last, once all their blobs are in place. `opts.mount_from` is
    /// tried before uploading too. Results are in the order of `images`.
    pub fn push_many(
        &self,
        store: &Store,
        images: &[(String, Reference)],
        opts: &PushOptions<'_>,
    ) -> Result<Vec<Pushed>> {
        super::chunk_size_from_env()?;
        let prepared = images
            .iter()
            .map(|(local, _)| Prepared::new(store, local))
            .collect::<Result<Vec<_>>>()?;
        let repos: Vec<Repo<'_>> = images
            .iter()
            .map(|(_, remote)| Repo::new(self, remote, Access::Push))
            .collect();
        let progress: &dyn Progress = opts.progress.unwrap_or(&Silent);

        let mut jobs: Vec<BlobJob> = Vec::new();
        let mut index: HashMap<Digest, usize> = HashMap::new();
        for (i, p) in prepared.iter().enumerate() {
            for (d, kind) in &p.wanted {
                let j = *index.entry(d.digest().clone()).or_insert_with(|| {
                    jobs.push(BlobJob { desc: d.clone(), kind: *kind, images: Vec::new() });
                    jobs.len() - 1
                });
                jobs[j].images.push(i);
            }
        }
        // Bigger blobs first, so the longest uploads do not start last.
        jobs.sort_by_key(|j| std::cmp::Reverse(j.desc.size()));

        let done = parallel::map(&jobs, opts.max_parallel, |job| {
            self.place_blob(store, &repos, job, opts, progress)
        })?;
        let mut outcomes: HashMap<(Digest, usize), BlobTransfer> = HashMap::new();
        for (job, per_image) in jobs.iter().zip(done) {
            for (i, t) in job.images.iter().zip(per_image) {
                outcomes.insert((job.desc.digest().clone(), *i), t);
            }
        }

        let order: Vec<usize> = (0..images.len()).collect();
        let prepared: Vec<std::sync::Mutex<Option<Prepared>>> =
            prepared.into_iter().map(|p| std::sync::Mutex::new(Some(p))).collect();
        parallel::map(&order, opts.max_parallel, |&i| {
            let p = prepared[i]
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .expect("each image's manifest is pushed once");
            let blobs = p
                .wanted
                .iter()
                .map(|(d, _)| {
                    outcomes
                        .get(&(d.digest().clone(), i))
                        .cloned()
                        .expect("every blob of every image was placed")
                })
                .collect();
            self.finish_push(&repos[i], &images[i].1, p, blobs, opts)
        })
    }

    /// One blob into every repository of `job.images` that lacks it; the transfers in the
    /// order of `job.images`.
    fn place_blob(
        &self,
        store: &Store,
        repos: &[Repo<'_>],
        job: &BlobJob,
        opts: &PushOptions<'_>,
        progress: &dyn Progress,
    ) -> Result<Vec<BlobTransfer>> {
        let digest = job.desc.digest();
        // Repositories (by name) that have the blob, and what each image got.
        let mut holders: Vec<String> = Vec::new();
        let mut seen: std::collections::HashSet<(String, String)> = Default::default();
        let mut missing: Vec<usize> = Vec::new();
        let mut result: Vec<Option<BlobTransfer>> = vec![None; job.images.len()];
        let present = || BlobTransfer { digest: digest.clone(), kind: job.kind, size: job.desc.size(), outcome: Outcome::Present, sent: 0, resumed_from: None };
        for (k, &i) in job.images.iter().enumerate() {
            let repo = &repos[i];
            let key = (repo.registry.clone(), repo.repository.clone());
            if !seen.insert(key) {
                continue;
            }
            if self.blob_exists(repo, digest)? {
                self.forget_upload(repo, store, digest, job.desc.size());
                holders.push(repo.repository.clone());
                progress.event(&BlobEvent::Finished { digest, outcome: Outcome::Present });
                result[k] = Some(present());
            } else {
                missing.push(k);
            }
        }
        for k in missing {
            let repo = &repos[job.images[k]];
            let mut from: Vec<&str> = holders
                .iter()
                .filter(|h| repos.iter().any(|r| &r.repository == *h && r.registry == repo.registry))
                .map(String::as_str)
                .collect();
            from.extend(opts.mount_from.iter().map(String::as_str));
            let t = self.upload_blob(repo, store, &job.desc, job.kind, opts, &from, false, progress)?;
            holders.push(repo.repository.clone());
            result[k] = Some(t);
        }
        // Images sharing a repository with an earlier one: the blob is there.
        Ok(result
            .into_iter()
            .map(|t| t.unwrap_or_else(present))
            .collect())
    }
}
