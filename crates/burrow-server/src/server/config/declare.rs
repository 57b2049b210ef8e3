//! The `declare_settings!` macro: one declaration per setting (name, type,
//! default, unit, doc, check) makes everything that used to repeat it —
//! the `Config` field and its default, the `ServerArgs` flag and its help,
//! the `[server]` key, the merge default < file < flag, the check, and the
//! row of README's table. The declarations themselves are in `settings.rs`.
//!
//! One declaration reads
//!
//! ```text
//! /// Doc: the `Config` field's doc, the flag's help, README's "meaning".
//! name: FieldType = "default" [computed by_fn],
//!     parse InputType as "VALUE_NAME"
//!     [, into conversion]
//!     [, check predicate => "what is expected"]
//!     [, runtime true];
//! ```
//!
//! `runtime true` marks a setting CONFIG SET may change while the server
//! runs (README's table says so); the server applies it in `dispatch/config.rs`.
//!
//! `InputType` is what the flag and the file take (`FromStr` for the
//! default and, unless it is a `clap::ValueEnum`, the flag; `Deserialize`
//! for the file); `into` turns it into the field's type (identity when
//! left out). The default is text parsed like a flag, so what `--help` and
//! README show is exactly what is used; `computed` names a function for a
//! default that depends on the machine, and the text then describes it.
//! `check` runs on the field's value; a failure names the flag, or the
//! file and key it came from.

use std::fmt::Display;
use std::str::FromStr;

/// A declared default, parsed as a flag would be. Every default is parsed
/// by the `defaults_parse_and_match_the_documented_values` test.
pub(super) fn parse_default<T: FromStr<Err: Display>>(name: &str, text: &str) -> T {
    text.parse().unwrap_or_else(|e| panic!("the declared default of {name} does not parse: {e}"))
}

/// Runs a declared check (a closure whose argument type comes from here).
pub(super) fn passes<T>(value: &T, check: impl Fn(&T) -> bool) -> bool {
    check(value)
}

macro_rules! declare_settings {
    (@expected) => { None };
    (@expected $expected:literal) => { Some($expected) };
    (@into) => { ::std::convert::identity };
    (@into $into:expr) => { $into };
    (@default $name:ident, $default:literal, $In:ty, $into:expr) => {
        ($into)($crate::server::config::declare::parse_default::<$In>(stringify!($name), $default))
    };
    (@default $name:ident, $default:literal, $In:ty, $into:expr, $computed:path) => { $computed() };
    (@runtime) => { false };
    (@runtime $runtime:literal) => { $runtime };

    ($(
        $(#[doc = $doc:literal])+
        $name:ident: $Out:ty = $default:literal $(computed $computed:path)?,
            parse $In:ty as $value:literal
            $(, into $into:expr)?
            $(, check $check:expr => $expected:literal)?
            $(, runtime $runtime:literal)?;
    )+) => {
        /// Everything the server needs to run.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Config {
            $( $(#[doc = $doc])+ pub $name: $Out, )+
            /// `Some` when started as a member of a cluster (`--config … --node-id`).
            pub cluster: Option<ClusterConfig>,
        }

        impl Default for Config {
            fn default() -> Self {
                Config {
                    $( $name: declare_settings!(
                        @default $name, $default, $In, declare_settings!(@into $($into)?) $(, $computed)?
                    ), )+
                    cluster: None,
                }
            }
        }

        /// `burrow-server` flags. Every flag left out falls back to the
        /// config file's `[server]` table, then to the default.
        #[derive(Debug, Clone, Default, clap::Parser)]
        #[command(name = "burrow-server", version, about = "Burrow key-value server")]
        pub struct ServerArgs {
            $(
                #[arg(
                    long,
                    value_name = $value,
                    ignore_case = true,
                    help = $crate::server::config::table::help(
                        &[$($doc),+],
                        declare_settings!(@expected $($expected)?),
                        $default,
                        declare_settings!(@runtime $($runtime)?),
                    ),
                )]
                pub(crate) $name: Option<$In>,
            )+
            /// TOML config file: a [server] table of the settings above (same names, with `_`), and
            /// optionally a cluster ([cluster] and [[node]] tables). Flags override it
            #[arg(long, value_name = "FILE")]
            pub(crate) config: Option<PathBuf>,
            /// Which [[node]] of the --config file's cluster this process is; required with a
            /// [cluster] file. Its addr and data_dir replace --bind, --port and --data-dir
            /// unless those are given too
            #[arg(long, value_name = "N")]
            pub(crate) node_id: Option<NodeId>,
            /// File holding the cluster secret members prove to each other (at least 16 bytes);
            /// overrides the cluster file's [cluster] secret_file
            #[arg(long, value_name = "FILE")]
            pub(crate) cluster_secret_file: Option<PathBuf>,
        }

        /// The `[server]` table of a config file; the flags' names, with `_`.
        #[derive(Debug, Default, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(super) struct ServerSection {
            $( pub(super) $name: Option<$In>, )+
        }

        impl ServerArgs {
            /// Each setting from its flag, else from `file`, else its
            /// default; also the names of the settings `file` gave.
            pub(super) fn merge(&self, file: ServerSection) -> (Config, Vec<&'static str>) {
                let mut config = Config::default();
                let mut from_file = Vec::new();
                $(
                    let given = match (self.$name.clone(), file.$name) {
                        (Some(flag), _) => Some(flag),
                        (None, Some(in_file)) => {
                            from_file.push(stringify!($name));
                            Some(in_file)
                        }
                        (None, None) => None,
                    };
                    if let Some(v) = given {
                        config.$name = (declare_settings!(@into $($into)?))(v);
                    }
                )+
                (config, from_file)
            }
        }

        impl Config {
            /// Each setting's own check, in declaration order.
            pub(super) fn check_each(&self) -> Result<(), ConfigError> {
                $($(
                    if !$crate::server::config::declare::passes(&self.$name, $check) {
                        return Err(ConfigError::Invalid {
                            name: stringify!($name),
                            expected: $expected,
                            got: self.$name.to_string(),
                            file: None,
                        });
                    }
                )?)+
                Ok(())
            }
        }

        impl Config {
            /// Every setting's `[server]` name and value as text (CONFIG GET).
            pub(crate) fn entries(&self) -> Vec<(&'static str, String)> {
                vec![$( (stringify!($name), $crate::server::config::show::Show::show(&self.$name)), )+]
            }

            /// This config with setting `name` set from `text`, parsed and
            /// checked as its flag is (CONFIG SET); `Err` says why not.
            pub(crate) fn with_setting(&self, name: &str, text: &str) -> Result<Config, String> {
                let mut c = self.clone();
                match name {
                    $( stringify!($name) => {
                        let v: $In = text.parse().map_err(|e| format!("{e}"))?;
                        c.$name = (declare_settings!(@into $($into)?))(v);
                        $(
                            if !$crate::server::config::declare::passes(&c.$name, $check) {
                                return Err(format!("must be {}", $expected));
                            }
                        )?
                    } )+
                    _ => return Err(format!("unknown setting '{name}'")),
                }
                Ok(c)
            }

            /// Whether setting `name` may change at run time (`runtime
            /// true` in its declaration); `None` for an unknown name.
            pub(crate) fn runtime_settable(name: &str) -> Option<bool> {
                match name {
                    $( stringify!($name) => Some(declare_settings!(@runtime $($runtime)?)), )+
                    _ => None,
                }
            }
        }

        /// Every setting, in declaration order: README's table (checked by a test).
        #[cfg(test)]
        pub(crate) const SETTINGS: &[$crate::server::config::table::Setting] = &[
            $( $crate::server::config::table::Setting {
                name: stringify!($name),
                default: $default,
                doc: &[$($doc),+],
                expected: declare_settings!(@expected $($expected)?),
                runtime: declare_settings!(@runtime $($runtime)?),
            }, )+
        ];
    };
}
pub(super) use declare_settings;
