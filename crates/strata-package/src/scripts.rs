//! Scriptlets, classic triggers (`%triggerprein`, `%triggerin`, `%triggerun`,
//! `%triggerpostun`) and file triggers as the header stores them.

use crate::Package;
use strata_rpmdb::header::Header;

/// Install-side scriptlets (erase-side ones never run when composing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScriptletKind {
    PreTrans,
    Pre,
    Post,
    PostTrans,
}

impl ScriptletKind {
    /// (body tag, interpreter tag)
    fn tags(self) -> (u32, u32) {
        match self {
            ScriptletKind::PreTrans => (1151, 1153),
            ScriptletKind::Pre => (1023, 1085),
            ScriptletKind::Post => (1024, 1086),
            ScriptletKind::PostTrans => (1152, 1154),
        }
    }

    /// rpm's name in messages (`%post`).
    pub fn label(self) -> &'static str {
        match self {
            ScriptletKind::PreTrans => "%pretrans",
            ScriptletKind::Pre => "%pre",
            ScriptletKind::Post => "%post",
            ScriptletKind::PostTrans => "%posttrans",
        }
    }
}

/// A script and the program that runs it (`/bin/sh`, `<lua>`, or `-p /sbin/ldconfig` with
/// no body).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scriptlet {
    /// Interpreter and its arguments; rpm's default is `/bin/sh`.
    pub program: Vec<String>,
    /// Script text; empty when the program runs alone (`%post -p /sbin/ldconfig`).
    pub body: String,
}

impl Scriptlet {
    pub fn is_lua(&self) -> bool {
        self.program.first().is_some_and(|p| p == "<lua>")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerKind {
    /// `%filetriggerin`: after each package that installs matching files.
    In,
    /// `%transfiletriggerin`: once, after the transaction, for all matching files.
    TransIn,
}

/// One file trigger: a script fired by files under any of `prefixes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileTrigger {
    pub kind: TriggerKind,
    pub prefixes: Vec<String>,
    pub script: Scriptlet,
    /// Higher runs first; rpm's default is 1000000.
    pub priority: u32,
}

/// Trigger flag bits (`rpmsenseFlags`).
const SENSE_TRIGGERIN: u32 = 1 << 16;
const SENSE_TRIGGERUN: u32 = 1 << 17;
const SENSE_TRIGGERPOSTUN: u32 = 1 << 18;
const SENSE_TRIGGERPREIN: u32 = 1 << 25;

/// Classic trigger tags: TRIGGERSCRIPTS, TRIGGERNAME, TRIGGERVERSION, TRIGGERFLAGS,
/// TRIGGERINDEX, TRIGGERSCRIPTPROG.
const TRIGGER_TAGS: [u32; 6] = [1065, 1066, 1067, 1068, 1069, 1092];

/// Which event fires a classic trigger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClassicKind {
    /// `%triggerprein`: before the triggering package's `%pre`.
    PreIn,
    /// `%triggerin`: after the triggering package's `%post`.
    In,
    /// `%triggerun`: before the triggering package is erased (never fires when composing).
    Un,
    /// `%triggerpostun`: after it was erased (never fires when composing).
    PostUn,
}

impl ClassicKind {
    /// rpm's name in messages (`%triggerin`).
    pub fn label(self) -> &'static str {
        match self {
            ClassicKind::PreIn => "%triggerprein",
            ClassicKind::In => "%triggerin",
            ClassicKind::Un => "%triggerun",
            ClassicKind::PostUn => "%triggerpostun",
        }
    }
}

/// One condition of a classic trigger (`%triggerin -- bash >= 5`): the owner's script
/// number `index` runs when a package named `name` whose provides overlap the range is
/// installed. Several conditions may share one script (`%triggerin -- a, b`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassicTrigger {
    pub kind: ClassicKind,
    /// Name of the package that fires it (rpm matches names only, never other provides).
    pub name: String,
    /// The comparison bits of the range (`RPMSENSE_LESS` 2, `GREATER` 4, `EQUAL` 8); 0
    /// when unversioned.
    pub sense: u32,
    /// EVR of the range; empty when unversioned.
    pub version: String,
    /// The script's number: [`Package::classic_trigger_script`].
    pub index: usize,
}

fn program(h: &Header<'_>, tag: u32) -> Vec<String> {
    h.strings(tag)
}

impl Package {
    pub fn scriptlet(&self, kind: ScriptletKind) -> Option<Scriptlet> {
        let h = self.header();
        let (body_tag, prog_tag) = kind.tags();
        let body = h.string(body_tag);
        let mut prog = program(&h, prog_tag);
        if body.is_none() && prog.is_empty() {
            return None;
        }
        if prog.is_empty() {
            prog.push("/bin/sh".into());
        }
        Some(Scriptlet { program: prog, body: body.unwrap_or_default() })
    }

    /// The package's classic triggers, one per condition, in header order (the order rpm
    /// looks at them in). Conditions with an index past the scripts are left out.
    pub fn classic_triggers(&self) -> Vec<ClassicTrigger> {
        let h = self.header();
        let scripts = h.strings(TRIGGER_TAGS[0]).len();
        let names = h.strings(TRIGGER_TAGS[1]);
        let versions = h.strings(TRIGGER_TAGS[2]);
        let flags = h.u32s(TRIGGER_TAGS[3]);
        let index = h.u32s(TRIGGER_TAGS[4]);
        let mut out = Vec::new();
        for (i, name) in names.into_iter().enumerate() {
            let (Some(&fl), Some(&ix)) = (flags.get(i), index.get(i)) else { break };
            let kind = if fl & SENSE_TRIGGERPREIN != 0 {
                ClassicKind::PreIn
            } else if fl & SENSE_TRIGGERIN != 0 {
                ClassicKind::In
            } else if fl & SENSE_TRIGGERUN != 0 {
                ClassicKind::Un
            } else if fl & SENSE_TRIGGERPOSTUN != 0 {
                ClassicKind::PostUn
            } else {
                continue;
            };
            if ix as usize >= scripts {
                continue;
            }
            out.push(ClassicTrigger { kind, name, sense: fl & 0xe, version: versions.get(i).cloned().unwrap_or_default(), index: ix as usize });
        }
        out
    }

    /// Script number `index` of the classic triggers (`TRIGGERSCRIPTS`, its program from
    /// `TRIGGERSCRIPTPROG`, `/bin/sh` by default).
    pub fn classic_trigger_script(&self, index: usize) -> Option<Scriptlet> {
        let h = self.header();
        let body = h.strings(TRIGGER_TAGS[0]).into_iter().nth(index)?;
        let prog = h.strings(TRIGGER_TAGS[5]).into_iter().nth(index).filter(|p| !p.is_empty()).unwrap_or_else(|| "/bin/sh".into());
        Some(Scriptlet { program: split_program(&prog), body })
    }

    /// The package's install file triggers (`%filetriggerin`, `%transfiletriggerin`).
    pub fn file_triggers(&self) -> Vec<FileTrigger> {
        let h = self.header();
        let mut out = Vec::new();
        // (scripts, progs, names, index, flags, priorities) tags per kind.
        for (kind, t) in [
            (TriggerKind::In, [5066, 5067, 5069, 5070, 5072, 5084]),
            (TriggerKind::TransIn, [5076, 5077, 5079, 5080, 5082, 5085]),
        ] {
            let scripts = h.strings(t[0]);
            let progs = h.strings(t[1]);
            let names = h.strings(t[2]);
            let index = h.u32s(t[3]);
            let flags = h.u32s(t[4]);
            let prios = h.u32s(t[5]);
            for (i, body) in scripts.iter().enumerate() {
                let prefixes: Vec<String> = names
                    .iter()
                    .zip(&index)
                    .zip(&flags)
                    .filter(|((_, &ix), &fl)| ix as usize == i && fl & SENSE_TRIGGERIN != 0)
                    .map(|((n, _), _)| n.clone())
                    .collect();
                if prefixes.is_empty() {
                    continue; // an un/postun trigger: never fires on install
                }
                let prog = progs.get(i).cloned().filter(|p| !p.is_empty()).unwrap_or_else(|| "/bin/sh".into());
                out.push(FileTrigger {
                    kind,
                    prefixes,
                    script: Scriptlet { program: split_program(&prog), body: body.clone() },
                    priority: prios.get(i).copied().unwrap_or(1_000_000),
                });
            }
        }
        out
    }
}

/// A trigger's program as stored (`/bin/sh`, `/usr/bin/lua -e`) → its words.
fn split_program(prog: &str) -> Vec<String> {
    prog.split(' ').filter(|w| !w.is_empty()).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::corpus_rpm;

    #[test]
    fn reads_scriptlets_and_the_ldconfig_transfiletrigger() {
        let redis = Package::open(&corpus_rpm("redis-server-")).unwrap();
        let pre = redis.scriptlet(ScriptletKind::Pre).unwrap();
        assert_eq!(pre.program, ["/bin/sh"]);
        assert!(pre.body.contains("getent passwd redis"));
        assert!(redis.scriptlet(ScriptletKind::PostTrans).is_none());

        let libc_bin = Package::open(&corpus_rpm("libc-bin-")).unwrap();
        let triggers = libc_bin.file_triggers();
        assert_eq!(triggers.len(), 1);
        assert_eq!(triggers[0].kind, TriggerKind::TransIn);
        assert_eq!(triggers[0].prefixes, ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"]);
        assert_eq!(triggers[0].script.body.trim(), "/sbin/ldconfig");
        assert_eq!(triggers[0].priority, 1_000_000);
    }
}
