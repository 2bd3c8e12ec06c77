//! The emails' templates: the built-in ones (`shared/templates/emails/`, compiled in) and a
//! team's own folder (`BILLING_EMAIL_TEMPLATES`) over them, file by file. Jinja syntax
//! (minijinja): `.html` files are escaped automatically, text and subjects are not (their
//! values are made single-line before rendering). Every template is checked when the function
//! starts: a missing file, a syntax error or an unknown variable stops the start with the file
//! and the line, so a broken template never half-renders an email at send time.
//!
//! Files: `{kind}.subject`, `{kind}.txt`, `{kind}.html`, each optionally per locale
//! (`{kind}.{locale}.html`), and partials whose names start with `_` (`_layout.html`,
//! `_macros.html`, `_footer.txt`, …), which locale files may have too (`_layout.fr.html`).

use super::brand::Brand;
use super::kinds::EmailKind;
use super::locale::{fallbacks, normalise, DEFAULT_LOCALE};
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The three parts of an email, as file extensions.
pub const PARTS: [&str; 3] = ["subject", "txt", "html"];

macro_rules! built_in {
    ($($file:literal),* $(,)?) => {
        [$(($file, include_str!(concat!("../../templates/emails/", $file)))),*]
    };
}

/// The built-in templates: the defaults, in the form a team's own take.
pub const BUILT_IN: [(&str, &str); 41] = built_in!(
    "_cancelled_why.fr.html",
    "_cancelled_why.fr.txt",
    "_cancelled_why.html",
    "_cancelled_why.txt",
    "_footer.fr.txt",
    "_footer.txt",
    "_invoice.fr.txt",
    "_invoice.txt",
    "_layout.fr.html",
    "_layout.html",
    "_macros.html",
    "payment_action_required.fr.html",
    "payment_action_required.fr.subject",
    "payment_action_required.fr.txt",
    "payment_action_required.html",
    "payment_action_required.subject",
    "payment_action_required.txt",
    "payment_failed.fr.html",
    "payment_failed.fr.subject",
    "payment_failed.fr.txt",
    "payment_failed.html",
    "payment_failed.subject",
    "payment_failed.txt",
    "subscription_cancelled.fr.html",
    "subscription_cancelled.fr.subject",
    "subscription_cancelled.fr.txt",
    "subscription_cancelled.html",
    "subscription_cancelled.subject",
    "subscription_cancelled.txt",
    "trial_ending.fr.html",
    "trial_ending.fr.subject",
    "trial_ending.fr.txt",
    "trial_ending.html",
    "trial_ending.subject",
    "trial_ending.txt",
    "welcome.fr.html",
    "welcome.fr.subject",
    "welcome.fr.txt",
    "welcome.html",
    "welcome.subject",
    "welcome.txt",
);

/// Why the templates cannot be used: the file, the line when known, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("email template {file}{}: {detail}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
pub struct TemplateError {
    pub file: String,
    pub line: Option<usize>,
    pub detail: String,
}

impl TemplateError {
    fn new(file: &str, detail: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            line: None,
            detail: detail.into(),
        }
    }

    fn engine(file: &str, e: &minijinja::Error) -> Self {
        Self {
            file: e.name().unwrap_or(file).to_owned(),
            line: e.line(),
            detail: e
                .detail()
                .map_or_else(|| e.kind().to_string(), str::to_owned),
        }
    }
}

/// One rendered email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The checked templates of this process, with the brand they show.
pub struct Templates {
    env: Environment<'static>,
    /// Per kind, the locales that have all three parts (the default always does).
    locales: BTreeMap<EmailKind, BTreeSet<String>>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("locales", &self.locales)
            .finish_non_exhaustive()
    }
}

/// What a file name says: a kind's part (in a locale), or a partial.
enum FileName {
    Part {
        kind: EmailKind,
        locale: Option<String>,
    },
    Partial,
}

fn classify(name: &str) -> Option<FileName> {
    if name.starts_with('_') {
        let (_, ext) = name.rsplit_once('.')?;
        return matches!(ext, "html" | "txt").then_some(FileName::Partial);
    }
    let (stem, ext) = name.rsplit_once('.')?;
    if !PARTS.contains(&ext) {
        return None;
    }
    let (kind, locale) = match stem.split_once('.') {
        Some((kind, locale)) => (kind, Some(normalise(locale).filter(|l| l == locale)?)),
        None => (stem, None),
    };
    Some(FileName::Part {
        kind: EmailKind::parse(kind)?,
        locale,
    })
}

impl Templates {
    /// The built-in templates only.
    pub fn built_in(brand: &Brand) -> Result<Self, TemplateError> {
        Self::load(brand, None)
    }

    /// The built-in templates with `dir`'s files over them, checked. `dir` holds only template
    /// files (a stray or misspelt file is refused, so a typo cannot silently keep a default).
    pub fn load(brand: &Brand, dir: Option<&Path>) -> Result<Self, TemplateError> {
        let mut sources: BTreeMap<String, String> = BUILT_IN
            .iter()
            .map(|(name, source)| ((*name).to_owned(), (*source).to_owned()))
            .collect();
        if let Some(dir) = dir {
            for (name, source) in read_dir(dir)? {
                sources.insert(name, source);
            }
        }
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        env.add_global("brand", Value::from_serialize(brand));
        let mut locales: BTreeMap<EmailKind, BTreeSet<String>> = BTreeMap::new();
        let mut parts: BTreeMap<(EmailKind, String), usize> = BTreeMap::new();
        for (name, source) in sources {
            match classify(&name) {
                Some(FileName::Part { kind, locale }) => {
                    let locale = locale.unwrap_or_else(|| DEFAULT_LOCALE.to_owned());
                    *parts.entry((kind, locale)).or_default() += 1;
                }
                Some(FileName::Partial) => {}
                None => {
                    return Err(TemplateError::new(
                        &name,
                        "not a template name: {kind}.{subject,txt,html}, \
                         {kind}.{locale}.{subject,txt,html}, or a partial _name.{html,txt}",
                    ))
                }
            }
            env.add_template_owned(name.clone(), source)
                .map_err(|e| TemplateError::engine(&name, &e))?;
        }
        for ((kind, locale), count) in parts {
            if count != PARTS.len() {
                let missing = PARTS
                    .iter()
                    .map(|p| file_name(kind, &locale, p))
                    .find(|f| env.get_template(f).is_err())
                    .unwrap_or_default();
                return Err(TemplateError::new(&missing, "missing"));
            }
            locales.entry(kind).or_default().insert(locale);
        }
        let templates = Self { env, locales };
        templates.check()?;
        Ok(templates)
    }

    /// Renders every kind in every locale it has with a sample of its variables: an unknown
    /// variable, a wrong call or a broken include is found now, not at send time.
    fn check(&self) -> Result<(), TemplateError> {
        for kind in EmailKind::ALL {
            for locale in self.locales_of(kind) {
                self.render(kind, locale, super::variables::sample(kind, locale))?;
            }
        }
        Ok(())
    }

    fn locales_of(&self, kind: EmailKind) -> impl Iterator<Item = &str> {
        self.locales
            .get(&kind)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    /// The locale to write `kind` in: the first of `preferred` (or its language) that has the
    /// kind's templates, else the default.
    pub fn locale_for<'a>(&'a self, kind: EmailKind, preferred: &[String]) -> &'a str {
        let have = self.locales.get(&kind);
        preferred
            .iter()
            .flat_map(|p| fallbacks(p))
            .find_map(|tag| have.and_then(|h| h.get(&tag)))
            .map_or(DEFAULT_LOCALE, String::as_str)
    }

    /// Renders `kind` in `locale` (which must have templates: see [`Self::locale_for`]).
    pub fn render(
        &self,
        kind: EmailKind,
        locale: &str,
        vars: Value,
    ) -> Result<RenderedEmail, TemplateError> {
        let render = |part: &str, vars: &Value| {
            let name = file_name(kind, locale, part);
            self.env
                .get_template(&name)
                .and_then(|t| t.render(vars))
                .map_err(|e| TemplateError::engine(&name, &e))
        };
        let subject = single_line(&render("subject", &vars)?);
        let vars = Value::from_iter(
            vars.try_iter()
                .map_err(|e| TemplateError::engine("-", &e))?
                .filter_map(|k| Some((k.as_str()?.to_owned(), vars.get_item(&k).ok()?)))
                .chain([("subject".to_owned(), Value::from(subject.clone()))]),
        );
        Ok(RenderedEmail {
            text: render("txt", &vars)? + "\n",
            html: render("html", &vars)? + "\n",
            subject,
        })
    }
}

/// Why the emails' settings of the brand and the templates are refused (cold start).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailLookError {
    #[error(transparent)]
    Brand(#[from] super::brand::BrandError),
    #[error(transparent)]
    Template(#[from] TemplateError),
}

/// The brand (`BILLING_BRAND_*`) and the templates (`BILLING_EMAIL_TEMPLATES`: a folder packaged
/// with the function, over the built-in ones), checked. With every kind off and no brand, the
/// built-in templates under a placeholder name (nothing is sent).
pub fn from_env(
    get: impl Fn(&str) -> Option<String>,
    emails_on: bool,
) -> Result<(Templates, Option<Brand>), EmailLookError> {
    let brand = super::brand::read_brand(&get, emails_on)?;
    let dir = get("BILLING_EMAIL_TEMPLATES").filter(|d| !d.trim().is_empty());
    let shown = brand.clone().unwrap_or_else(|| Brand::named("-"));
    let templates = Templates::load(&shown, dir.as_deref().map(Path::new))?;
    Ok((templates, brand))
}

/// `{kind}.{part}` in the default locale, `{kind}.{locale}.{part}` in another.
fn file_name(kind: EmailKind, locale: &str, part: &str) -> String {
    if locale == DEFAULT_LOCALE {
        format!("{kind}.{part}")
    } else {
        format!("{kind}.{locale}.{part}")
    }
}

/// A subject on one line: control characters become spaces, runs of spaces one.
fn single_line(text: &str) -> String {
    text.split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The template files of a team's folder: name → source. Sub-folders are not read.
fn read_dir(dir: &Path) -> Result<Vec<(String, String)>, TemplateError> {
    let shown = dir.display().to_string();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| TemplateError::new(&shown, format!("unreadable: {e}")))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| TemplateError::new(&shown, format!("unreadable: {e}")))?;
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            // Editors' and the OS's own files (.DS_Store, .swp).
            continue;
        }
        let source = std::fs::read_to_string(&path)
            .map_err(|e| TemplateError::new(&name, format!("unreadable: {e}")))?;
        files.push((name, source));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emails::variables::{sample, sample_content, variables};

    /// A fresh folder of override files.
    fn folder(files: &[(&str, &str)]) -> std::path::PathBuf {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "billing-templates-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        for (name, source) in files {
            std::fs::write(dir.join(name), source).expect("write");
        }
        dir
    }

    fn brand() -> Brand {
        Brand {
            color: "#0a7cff".into(),
            ..Brand::named("Acme")
        }
    }

    #[test]
    fn the_built_in_list_is_the_folder() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/emails");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .expect("the folder")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let listed: Vec<&str> = BUILT_IN.iter().map(|(name, _)| *name).collect();
        assert_eq!(on_disk, listed);
    }

    #[test]
    fn every_built_in_kind_has_english_and_french() {
        let t = Templates::built_in(&brand()).expect("built-in templates check");
        for kind in EmailKind::ALL {
            let fr = t.render(kind, "fr", sample(kind, "fr")).expect("renders");
            assert!(
                fr.text.starts_with("Bonjour Sam Sample,"),
                "{kind}: {}",
                fr.text
            );
            assert!(fr.html.contains("lang=\"fr\""), "{kind}");
            assert!(fr.text.contains("Vous recevez cet email"), "{kind}");
            let prefs = ["fr-CA".to_owned()];
            assert_eq!(t.locale_for(kind, &prefs), "fr");
        }
        let fr = t
            .render(
                EmailKind::PaymentFailed,
                "fr",
                sample(EmailKind::PaymentFailed, "fr"),
            )
            .expect("renders");
        assert!(
            fr.text.contains("29,00\u{a0}€") && fr.text.contains("1er décembre 2025"),
            "{}",
            fr.text
        );
    }

    #[test]
    fn every_built_in_kind_renders_in_english_with_the_brand() {
        let t = Templates::built_in(&brand()).expect("built-in templates check");
        for kind in EmailKind::ALL {
            let r = t
                .render(kind, DEFAULT_LOCALE, sample(kind, DEFAULT_LOCALE))
                .expect("renders");
            assert!(
                r.subject.contains("Acme") || r.subject.contains("Pro plan"),
                "{kind}: {}",
                r.subject
            );
            assert!(r.text.contains("You receive this email because"), "{kind}");
            assert!(r.html.contains("#0a7cff"), "{kind}: the brand's colour");
            assert!(r.html.contains("Hello Sam Sample,"), "{kind}");
        }
    }

    #[test]
    fn an_override_changes_one_kind_and_leaves_the_others_on_the_defaults() {
        let dir = folder(&[
            ("welcome.subject", "Hi from {{ brand.name }}!"),
            ("welcome.txt", "Glad you're here, {{ customer_name or 'friend' }}."),
            (
                "welcome.html",
                "{% extends \"_layout.html\" %}{% block content %}<p style=\"color:#ff0000\">Glad you're here, {{ customer_name or 'friend' }}: {{ product_name }}.</p>{% endblock %}{% block why %}Because.{% endblock %}",
            ),
        ]);
        let built_in = Templates::built_in(&brand()).expect("built-in");
        let t = Templates::load(&brand(), Some(&dir)).expect("the override checks");
        let welcome = t
            .render(EmailKind::Welcome, "en", sample(EmailKind::Welcome, "en"))
            .expect("welcome");
        assert_eq!(welcome.subject, "Hi from Acme!");
        assert!(
            welcome.text.starts_with("Glad you're here, Sam Sample."),
            "{}",
            welcome.text
        );
        assert!(welcome.html.contains("color:#ff0000"), "{}", welcome.html);
        assert!(
            welcome.html.contains("#0a7cff"),
            "the layout is still the built-in one"
        );
        for kind in EmailKind::ALL
            .into_iter()
            .filter(|k| *k != EmailKind::Welcome)
        {
            assert_eq!(
                t.render(kind, "en", sample(kind, "en")).expect("renders"),
                built_in
                    .render(kind, "en", sample(kind, "en"))
                    .expect("renders"),
                "{kind} stays on the default"
            );
        }
    }

    #[test]
    fn hostile_text_stays_escaped_inside_an_overridden_template() {
        let dir = folder(&[
            ("welcome.subject", "{{ product_name }}"),
            ("welcome.txt", "{{ product_name }} for {{ customer_name }}"),
            (
                "welcome.html",
                "<p title=\"{{ product_name }}\">{{ product_name }} for {{ customer_name }}</p>",
            ),
        ]);
        let t = Templates::load(&brand(), Some(&dir)).expect("checks");
        let content = crate::emails::context::EmailContent::Welcome {
            product_name: Some("<script>alert(1)</script>\" onmouseover=\"x".into()),
        };
        let r = t
            .render(
                EmailKind::Welcome,
                "en",
                variables(&content, "en", Some("<img src=x onerror=y>")),
            )
            .expect("renders");
        assert!(
            !r.html.contains("<script>") && !r.html.contains("<img"),
            "{}",
            r.html
        );
        assert!(!r.html.contains("\" onmouseover"), "{}", r.html);
        assert!(r.html.contains("&lt;script&gt;"), "{}", r.html);
        assert!(
            r.text.contains("<script>"),
            "the text is not HTML: shown as written"
        );
    }

    #[test]
    fn a_broken_template_stops_the_start_naming_the_file_and_the_line() {
        let dir = folder(&[(
            "payment_failed.html",
            "{% extends \"_layout.html\" %}\n{% block content %}\n<p>{{ invoice.number }</p>\n{% endblock %}",
        )]);
        let err = Templates::load(&brand(), Some(&dir)).expect_err("a syntax error");
        assert_eq!(
            (err.file.as_str(), err.line),
            ("payment_failed.html", Some(3)),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("email template payment_failed.html line 3:"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_variable_stops_the_start_naming_the_file_and_the_line() {
        let dir = folder(&[
            ("trial_ending.subject", "Trial ends {{ trial_end }}"),
            (
                "trial_ending.txt",
                "Hello,\n\nYour plan {{ plan_name }} ends.",
            ),
            ("trial_ending.html", "<p>{{ trial_end }}</p>"),
        ]);
        let err = Templates::load(&brand(), Some(&dir)).expect_err("an unknown variable");
        assert_eq!(
            (err.file.as_str(), err.line),
            ("trial_ending.txt", Some(3)),
            "{err}"
        );
    }

    #[test]
    fn a_missing_part_or_a_stray_file_stops_the_start() {
        let dir = folder(&[
            ("welcome.de.subject", "Willkommen"),
            ("welcome.de.txt", "Willkommen"),
        ]);
        let err = Templates::load(&brand(), Some(&dir)).expect_err("a missing part");
        assert_eq!(
            (err.file.as_str(), err.detail.as_str()),
            ("welcome.de.html", "missing")
        );
        let dir = folder(&[("welcom.html", "<p>typo</p>")]);
        let err = Templates::load(&brand(), Some(&dir)).expect_err("a stray file");
        assert_eq!(err.file, "welcom.html", "{err}");
        let err = Templates::load(&brand(), Some(Path::new("/nonexistent/templates")))
            .expect_err("no folder");
        assert!(err.detail.starts_with("unreadable"), "{err}");
    }

    #[test]
    fn the_locale_is_the_first_preferred_one_with_templates() {
        let dir = folder(&[
            ("welcome.de.subject", "Willkommen"),
            ("welcome.de.txt", "Willkommen bei {{ brand.name }}"),
            ("welcome.de.html", "<p>Willkommen bei {{ brand.name }}</p>"),
        ]);
        let t = Templates::load(&brand(), Some(&dir)).expect("checks");
        let pick = |kind, prefs: &[&str]| {
            let prefs: Vec<String> = prefs.iter().map(|p| (*p).to_owned()).collect();
            t.locale_for(kind, &prefs).to_owned()
        };
        assert_eq!(pick(EmailKind::Welcome, &["it", "de-AT", "en"]), "de");
        assert_eq!(pick(EmailKind::Welcome, &[]), "en");
        assert_eq!(
            pick(EmailKind::PaymentFailed, &["de"]),
            "en",
            "no German payment_failed"
        );
        let _ = sample_content(EmailKind::Welcome);
    }
}
