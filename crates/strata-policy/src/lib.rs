//! The build service's policy (`strata serve --policy FILE`, TOML): which token has which
//! role, and per image or image glob who may submit and promote, from which git sources
//! and refs, pushing to which registry paths, and whether a Dockerfile build may use the
//! host's network or fetch content by URL (`ADD <url>`). Koji's hub policies and
//! permissions are the model; a refusal always names the rule that refused.
//!
//! ```toml
//! [roles]                       # token name → role, over the role the token was made with
//! "ci-bot" = "submitter"
//!
//! [default]                     # for every image no [[image]] rule matches
//! submit = ["role:submitter"]   # token names, "role:NAME", or "*" (any valid token)
//! promote = ["role:admin"]
//! sources = ["https://git.example.org/**"]   # globs; `*` stays within a path segment
//! refs = ["main", "release/*"]
//! registries = ["registry.example.org/team"] # prefixes of REGISTRY/NAME pushed to
//! network_host = false
//! remote_content = false
//!
//! [[image]]                     # the first rule whose `match` fits the image applies;
//! match = "apps/*"              # keys it leaves out come from [default]
//! submit = ["ci-bot", "role:admin"]
//! network_host = true
//! ```
//!
//! Admin tokens may always submit and promote; the source, ref, registry, network and
//! content rules hold for everyone.

use globset::{Glob, GlobBuilder, GlobMatcher};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The roles a token may have, from most to least powerful.
pub const ROLES: [&str; 4] = ["admin", "submitter", "worker", "reader"];

/// A policy file that could not be loaded: where, and why.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct LoadError {
    pub file: String,
    pub message: String,
}

/// Why a call was refused: the rule, and what in the call it did not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused by policy rule {rule}: {reason}")]
pub struct Refusal {
    pub rule: String,
    pub reason: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    roles: BTreeMap<String, toml::Spanned<String>>,
    #[serde(default)]
    default: RuleText,
    #[serde(default)]
    image: Vec<toml::Spanned<ImageRuleText>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RuleText {
    submit: Option<Vec<toml::Spanned<String>>>,
    promote: Option<Vec<toml::Spanned<String>>>,
    sources: Option<Vec<toml::Spanned<String>>>,
    refs: Option<Vec<toml::Spanned<String>>>,
    registries: Option<Vec<toml::Spanned<String>>>,
    network_host: Option<bool>,
    remote_content: Option<bool>,
}

/// An `[[image]]` table: `match` and a rule's keys (spelled out, not `flatten`ed: a
/// flattened struct loses the spans that errors name lines with).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageRuleText {
    #[serde(rename = "match")]
    pattern: toml::Spanned<String>,
    submit: Option<Vec<toml::Spanned<String>>>,
    promote: Option<Vec<toml::Spanned<String>>>,
    sources: Option<Vec<toml::Spanned<String>>>,
    refs: Option<Vec<toml::Spanned<String>>>,
    registries: Option<Vec<toml::Spanned<String>>>,
    network_host: Option<bool>,
    remote_content: Option<bool>,
}

impl ImageRuleText {
    fn split(self) -> (toml::Spanned<String>, RuleText) {
        let rule = RuleText {
            submit: self.submit,
            promote: self.promote,
            sources: self.sources,
            refs: self.refs,
            registries: self.registries,
            network_host: self.network_host,
            remote_content: self.remote_content,
        };
        (self.pattern, rule)
    }
}

/// Who a principal list names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Principal {
    Any,
    Role(String),
    Token(String),
}

#[derive(Debug, Clone)]
struct Patterns {
    text: Vec<String>,
    matchers: Vec<GlobMatcher>,
}

impl Patterns {
    fn matches(&self, s: &str) -> bool {
        self.matchers.iter().any(|m| m.is_match(s))
    }
}

#[derive(Debug, Clone, Default)]
struct Rule {
    submit: Option<Vec<Principal>>,
    promote: Option<Vec<Principal>>,
    sources: Option<Patterns>,
    refs: Option<Patterns>,
    registries: Option<Vec<String>>,
    network_host: Option<bool>,
    remote_content: Option<bool>,
}

/// A loaded, validated policy. [`Policy::default`] allows what the service allows without
/// a policy file: submitters submit and promote, from any source, to the service's
/// registry, without the host's network, with `ADD <url>`.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    roles: BTreeMap<String, String>,
    default: Rule,
    images: Vec<(String, GlobMatcher, Rule)>,
}

/// What a submission asks for, for one image.
#[derive(Debug, Clone, Default)]
pub struct Submission<'a> {
    /// The token's name and (effective) role.
    pub actor: &'a str,
    pub role: &'a str,
    pub image: &'a str,
    pub source: &'a str,
    /// The ref as submitted (`None`: the remote HEAD, checked as `HEAD`).
    pub r#ref: Option<&'a str>,
    /// `REGISTRY[/PREFIX]/NAME` the build pushes to.
    pub destination: Option<&'a str>,
    pub network_host: bool,
}

/// What an allowed submission may do while it builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// `ADD <url>` is allowed.
    pub remote_content: bool,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|b| *b == b'\n').count() + 1
}

fn glob(pattern: &str) -> Result<GlobMatcher, String> {
    GlobBuilder::new(pattern).literal_separator(true).build().map(|g: Glob| g.compile_matcher()).map_err(|e| e.to_string())
}

impl Policy {
    /// Parses and validates a policy; an error names the line and the key.
    pub fn parse(file: &str, text: &str) -> Result<Policy, LoadError> {
        let fail = |offset: Option<usize>, message: String| LoadError {
            file: file.to_string(),
            message: match offset {
                Some(o) => format!("line {}: {message}", line_of(text, o)),
                None => message,
            },
        };
        let parsed: File = toml::from_str(text).map_err(|e| fail(e.span().map(|s| s.start), e.message().to_string()))?;
        let mut policy = Policy::default();
        for (name, role) in parsed.roles {
            if !ROLES.contains(&role.get_ref().as_str()) {
                return Err(fail(Some(role.span().start), format!("roles.{name:?}: role {:?} is not one of {}", role.get_ref(), ROLES.join(", "))));
            }
            policy.roles.insert(name, role.into_inner());
        }
        let rule = |t: RuleText, key: &str| -> Result<Rule, LoadError> {
            let principals = |list: Option<Vec<toml::Spanned<String>>>, field: &str| -> Result<Option<Vec<Principal>>, LoadError> {
                list.map(|l| {
                    l.into_iter()
                        .map(|p| match p.get_ref().as_str() {
                            "*" => Ok(Principal::Any),
                            s => match s.strip_prefix("role:") {
                                Some(r) if ROLES.contains(&r) => Ok(Principal::Role(r.to_string())),
                                Some(r) => Err(fail(Some(p.span().start), format!("{key}.{field}: role {r:?} is not one of {}", ROLES.join(", ")))),
                                None if s.is_empty() => Err(fail(Some(p.span().start), format!("{key}.{field}: an empty token name"))),
                                None => Ok(Principal::Token(s.strip_prefix("token:").unwrap_or(s).to_string())),
                            },
                        })
                        .collect()
                })
                .transpose()
            };
            let patterns = |list: Option<Vec<toml::Spanned<String>>>, field: &str| -> Result<Option<Patterns>, LoadError> {
                list.map(|l| {
                    let mut p = Patterns { text: Vec::new(), matchers: Vec::new() };
                    for s in l {
                        let m = glob(s.get_ref()).map_err(|e| fail(Some(s.span().start), format!("{key}.{field}: {e}")))?;
                        p.text.push(s.into_inner());
                        p.matchers.push(m);
                    }
                    Ok(p)
                })
                .transpose()
            };
            let registries = t
                .registries
                .map(|l| {
                    l.into_iter()
                        .map(|r| {
                            let s = r.get_ref().trim_end_matches('/');
                            if s.is_empty() || s.contains("://") || s.contains(char::is_whitespace) {
                                Err(fail(Some(r.span().start), format!("{key}.registries: {:?} is not HOST[:PORT][/PREFIX]", r.get_ref())))
                            } else {
                                Ok(s.to_string())
                            }
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?;
            Ok(Rule {
                submit: principals(t.submit, "submit")?,
                promote: principals(t.promote, "promote")?,
                sources: patterns(t.sources, "sources")?,
                refs: patterns(t.refs, "refs")?,
                registries,
                network_host: t.network_host,
                remote_content: t.remote_content,
            })
        };
        policy.default = rule(parsed.default, "default")?;
        for (i, img) in parsed.image.into_iter().enumerate() {
            let start = img.span().start;
            let (pattern, body) = img.into_inner().split();
            let key = format!("image[{i}]");
            let matcher = glob(pattern.get_ref()).map_err(|e| fail(Some(pattern.span().start), format!("{key}.match: {e}")))?;
            let name = format!("[[image]] match = {:?} (line {})", pattern.get_ref(), line_of(text, start));
            policy.images.push((name, matcher, rule(body, &key)?));
        }
        Ok(policy)
    }

    /// Loads a policy file.
    pub fn load(path: &std::path::Path) -> Result<Policy, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|e| LoadError { file: path.display().to_string(), message: e.to_string() })?;
        Policy::parse(&path.display().to_string(), &text)
    }

    /// How many `[[image]]` rules the policy has.
    pub fn image_rules(&self) -> usize {
        self.images.len()
    }

    /// The role a token has under this policy: `[roles]` by the token's name, else the
    /// role it was made with.
    pub fn role_of<'a>(&'a self, token_name: &str, made_with: &'a str) -> &'a str {
        self.roles.get(token_name).map_or(made_with, String::as_str)
    }

    /// The rule for an image: its name and the rule with [default]'s keys filled in.
    fn rule_for(&self, image: &str) -> (String, Rule) {
        let d = &self.default;
        match self.images.iter().find(|(_, m, _)| m.is_match(image)) {
            Some((name, _, r)) => (
                name.clone(),
                Rule {
                    submit: r.submit.clone().or_else(|| d.submit.clone()),
                    promote: r.promote.clone().or_else(|| d.promote.clone()),
                    sources: r.sources.clone().or_else(|| d.sources.clone()),
                    refs: r.refs.clone().or_else(|| d.refs.clone()),
                    registries: r.registries.clone().or_else(|| d.registries.clone()),
                    network_host: r.network_host.or(d.network_host),
                    remote_content: r.remote_content.or(d.remote_content),
                },
            ),
            None => ("[default]".to_string(), d.clone()),
        }
    }

    fn allowed(list: &Option<Vec<Principal>>, fallback_role: &str, actor: &str, role: &str) -> bool {
        if role == "admin" {
            return true;
        }
        match list {
            None => role == fallback_role,
            Some(l) => l.iter().any(|p| match p {
                Principal::Any => true,
                Principal::Role(r) => r == role,
                Principal::Token(t) => t == actor,
            }),
        }
    }

    /// Whether this submission may be built, and with what.
    pub fn check_submit(&self, s: &Submission<'_>) -> Result<Grant, Refusal> {
        let (name, rule) = self.rule_for(s.image);
        let refuse = |reason: String| Err(Refusal { rule: name.clone(), reason });
        if !Policy::allowed(&rule.submit, "submitter", s.actor, s.role) {
            return refuse(format!("{} ({}) may not submit {}", s.actor, s.role, s.image));
        }
        if let Some(p) = &rule.sources {
            if !p.matches(s.source) {
                return refuse(format!("source {} is not one of {}", s.source, p.text.join(", ")));
            }
        }
        if let Some(p) = &rule.refs {
            let r = s.r#ref.unwrap_or("HEAD");
            if !p.matches(r) {
                return refuse(format!("ref {r} is not one of {}", p.text.join(", ")));
            }
        }
        if let (Some(allowed), Some(dest)) = (&rule.registries, s.destination) {
            let under = |prefix: &String| dest == prefix || dest.strip_prefix(prefix.as_str()).is_some_and(|rest| rest.starts_with('/'));
            if !allowed.iter().any(under) {
                return refuse(format!("pushing to {dest} is not under {}", allowed.join(", ")));
            }
        }
        if s.network_host && !rule.network_host.unwrap_or(false) {
            return refuse(format!("{} may not build with the host's network", s.image));
        }
        Ok(Grant { remote_content: rule.remote_content.unwrap_or(true) })
    }

    /// Whether `actor` may move `image`'s floating tags.
    pub fn check_promote(&self, actor: &str, role: &str, image: &str) -> Result<(), Refusal> {
        let (name, rule) = self.rule_for(image);
        if Policy::allowed(&rule.promote, "submitter", actor, role) {
            Ok(())
        } else {
            Err(Refusal { rule: name, reason: format!("{actor} ({role}) may not promote {image}") })
        }
    }
}

#[cfg(test)]
mod tests;
