//! The settings as documentation: each flag's `--help` line and README's
//! settings table, both made from the declarations, and a test that fails
//! when README's table and the declarations disagree in any way. The table
//! exists for that test only.

/// One declared setting, as documented.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Setting {
    /// The `Config` field and `[server]` key (the flag is this with `-`).
    pub name: &'static str,
    /// The default as written (parsed like a flag unless computed).
    pub default: &'static str,
    /// The doc comment's lines.
    pub doc: &'static [&'static str],
    /// What the setting's check expects, if it has one.
    pub expected: Option<&'static str>,
    /// CONFIG SET may change it at run time.
    pub runtime: bool,
}

#[cfg(test)]
impl Setting {
    pub(crate) fn flag(&self) -> String {
        format!("--{}", self.name.replace('_', "-"))
    }

    /// The doc comment as one line, and what the check expects.
    pub(crate) fn doc(&self) -> String {
        describe(self.doc, self.expected, self.runtime)
    }
}

fn describe(doc: &[&str], expected: Option<&str>, runtime: bool) -> String {
    let text = doc.iter().map(|l| l.trim()).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
    let text = match expected {
        Some(e) => format!("{text}; must be {e}"),
        None => text,
    };
    if runtime {
        format!("{text}; `CONFIG SET` changes it at run time")
    } else {
        text
    }
}

/// A flag's `--help` text: its doc, what it must be, and its default.
pub(super) fn help(doc: &[&str], expected: Option<&str>, default: &str, runtime: bool) -> String {
    format!("{} [default: {default}]", describe(doc, expected, runtime))
}

/// The header README's table starts with.
#[cfg(test)]
const HEADER: &str = "| flag | `[server]` key | default | meaning |";

/// README's settings table, in declaration order.
#[cfg(test)]
pub(super) fn markdown_table(settings: &[Setting]) -> String {
    let mut out = format!("{HEADER}\n|---|---|---|---|\n");
    for s in settings {
        out.push_str(&format!("| `{}` | `{}` | {} | {} |\n", s.flag(), s.name, s.default, s.doc()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::SETTINGS;

    /// README's table: the header line and every `|` line after it.
    fn readme_table(readme: &str) -> Option<String> {
        let start = readme.find(&format!("\n{HEADER}\n"))? + 1;
        let table: Vec<&str> = readme[start..].lines().take_while(|l| l.starts_with('|')).collect();
        Some(table.iter().map(|l| format!("{l}\n")).collect())
    }

    #[test]
    fn readme_table_matches_the_declared_settings() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
            .expect("read README.md");
        let want = markdown_table(SETTINGS);
        let got = readme_table(&readme).unwrap_or_else(|| panic!("README.md has no table headed {HEADER}"));
        if got != want {
            let (got_lines, want_lines): (Vec<&str>, Vec<&str>) =
                (got.lines().collect(), want.lines().collect());
            let only_readme: Vec<&&str> = got_lines.iter().filter(|l| !want_lines.contains(l)).collect();
            let only_declared: Vec<&&str> = want_lines.iter().filter(|l| !got_lines.contains(l)).collect();
            panic!(
                "README's settings table and the declarations (server/config/settings.rs) disagree.\n\
                 only in README: {only_readme:#?}\nonly declared: {only_declared:#?}\n\
                 the table to paste into README:\n{want}"
            );
        }
    }

    #[test]
    fn the_table_notices_a_missing_an_extra_or_a_changed_row() {
        let table = markdown_table(SETTINGS);
        let readme = |t: &str| format!("# Burrow\n\ntext\n\n{t}\nmore text\n");
        assert_eq!(readme_table(&readme(&table)).as_deref(), Some(table.as_str()));
        let rows: Vec<&str> = table.lines().collect();
        let missing = rows[..rows.len() - 1].iter().map(|l| format!("{l}\n")).collect::<String>();
        assert_ne!(readme_table(&readme(&missing)).unwrap(), table);
        let extra = format!("{table}| `--colour` | `colour` | on | paint |\n");
        assert_ne!(readme_table(&readme(&extra)).unwrap(), table);
        let changed = table.replacen("7440", "7441", 1);
        assert_ne!(readme_table(&readme(&changed)).unwrap(), table);
    }

    #[test]
    fn every_setting_is_a_flag_with_its_default_in_the_help() {
        use clap::CommandFactory;
        let cmd = crate::server::ServerArgs::command();
        for s in SETTINGS {
            let long = &s.flag()[2..];
            let arg = cmd
                .get_arguments()
                .find(|a| a.get_long() == Some(long))
                .unwrap_or_else(|| panic!("{} is not a flag", s.flag()));
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            assert_eq!(help, format!("{} [default: {}]", s.doc(), s.default), "{}", s.flag());
        }
    }
}
