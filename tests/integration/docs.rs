//! What the documents say about the server, checked against the server:
//! every INFO section it prints is listed by README, `help INFO` and
//! protocol.md §8.6, and README links only to files in the repository.

use crate::common;

const README: &str = include_str!("../../README.md");
const PROTOCOL: &str = include_str!("../../protocol.md");

/// The `# name` headers of a full INFO reply, in order.
fn info_sections(info: &str) -> Vec<String> {
    info.lines().filter_map(|l| l.strip_prefix("# ")).map(str::to_string).collect()
}

/// The text of README's "## Commands" part (up to the next heading).
fn readme_commands() -> &'static str {
    let from = README.find("\n## Commands\n").expect("README has a Commands part");
    let rest = &README[from + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    &rest[..end]
}

#[tokio::test]
async fn every_info_section_is_documented_in_readme_help_and_protocol() {
    let server = common::start().await;
    let mut c = burrow_client::Client::connect(server.addr).await.unwrap();
    let sections = info_sections(&c.info("").await.unwrap());
    assert!(sections.len() >= 8, "INFO printed {sections:?}");
    let help = burrow_cli::COMMANDS.iter().find(|s| s.name == "INFO").expect("INFO in the CLI's table");
    let protocol = &PROTOCOL[PROTOCOL.find("### 8.6 INFO").expect("protocol.md §8.6")..];
    let protocol = &protocol[..protocol.find("\n### ").unwrap_or(protocol.len())];
    let readme = readme_commands();
    for name in &sections {
        let quoted = format!("`{name}`");
        assert!(readme.contains(&quoted), "README's Commands part does not list INFO section {quoted}");
        assert!(protocol.contains(&quoted), "protocol.md §8.6 does not list INFO section {quoted}");
        let listed = help.description.split(|ch: char| !ch.is_ascii_alphanumeric()).any(|w| w == name);
        assert!(listed, "`help INFO` does not list section {name}: {:?}", help.description);
    }
    server.shutdown().await.unwrap();
}

/// Markdown link targets `](target)` in `text`.
fn link_targets(text: &str) -> Vec<&str> {
    text.match_indices("](").filter_map(|(i, _)| text[i + 2..].split(')').next()).collect()
}

/// README is read in the repository (and in a copy without network): its
/// links go to files of the repository, each of which exists, or to its
/// own headings; protocols and papers are cited by name, not linked.
#[test]
fn readme_links_only_to_files_in_the_repository() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for scheme in ["http://", "https://", "ftp://"] {
        assert!(!README.contains(scheme), "README holds a {scheme} address: cite by name instead");
    }
    let targets = link_targets(README);
    assert!(!targets.is_empty());
    for target in targets {
        assert!(!target.contains("://") && !target.starts_with("mailto:"), "README links outside: {target}");
        let file = target.split('#').next().unwrap_or_default();
        if file.is_empty() {
            continue;
        }
        assert!(
            !file.starts_with('/') && !file.starts_with(".."),
            "README links outside the repository: {target}"
        );
        assert!(root.join(file).exists(), "README links to {file}, which does not exist");
    }
}
