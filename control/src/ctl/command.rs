//! The command language of `ipsec-ctl`, as IOS's EXEC mode speaks it: a tree of keywords and
//! arguments in which any unambiguous prefix of a keyword is accepted (`sh cr isa sa`),
//! parsed into a typed [`Command`]; IOS's error answers ([`ParseError`]: `% Invalid input
//! detected at '^' marker.`, `% Ambiguous command:  "sh cr i"`, `% Incomplete command.`);
//! `?` help ([`help`]) and the candidates for tab completion ([`complete`]).
//!
//! The server parses the line it receives (it trusts no client); the client parses it too,
//! before sending, to print errors with the caret under the prompt's line and to complete
//! and help without a round trip.

use std::fmt::{self, Write};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// A parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Show(Show),
    /// `clear crypto sa [peer A | map NAME | spi N]`.
    ClearSa(SaSelector),
    /// `clear crypto isakmp [CONN-ID]`: None clears every phase 1 SA.
    ClearIsakmp(Option<u32>),
    /// `crypto pki crl request TRUSTPOINT`.
    CrlRequest(String),
    /// `debug crypto isakmp | ipsec | engine`: stream that trace to this session.
    Debug(DebugFacility),
    /// `undebug all` (None) or `undebug crypto isakmp | ipsec | engine`.
    Undebug(Option<DebugFacility>),
    /// `reload`: apply the configuration file again.
    Reload,
    /// `exit` / `quit`: end the session (the client's business; the server just says ok).
    Exit,
}

/// The `show` commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Show {
    /// `show crypto isakmp sa [detail]`.
    IsakmpSa { detail: bool },
    /// `show crypto isakmp policy`.
    IsakmpPolicy,
    /// `show crypto ipsec sa [peer A | map NAME] [detail]`.
    IpsecSa { filter: IpsecSaFilter, detail: bool },
    /// `show crypto ipsec transform-set`.
    TransformSet,
    /// `show crypto map`.
    CryptoMap,
    /// `show crypto engine connections active`.
    EngineConnections,
    /// `show crypto engine brief`.
    EngineBrief,
    /// `show crypto engine configuration`.
    EngineConfiguration,
    /// `show crypto engine accelerator statistics`.
    EngineStatistics,
    /// `show crypto pki certificates`.
    PkiCertificates,
    /// `show crypto pki trustpoints`.
    PkiTrustpoints,
    /// `show crypto pki crls`.
    PkiCrls,
    /// `show debugging`: what this session has turned on.
    Debugging,
}

/// Which flows `show crypto ipsec sa` shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IpsecSaFilter {
    All,
    Peer(IpAddr),
    Map(String),
}

/// Which IPsec SAs `clear crypto sa` deletes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SaSelector {
    All,
    Peer(IpAddr),
    Map(String),
    /// The SA with this SPI, and its partner in the other direction.
    Spi(u32),
}

/// A trace a session can turn on with `debug crypto ...`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DebugFacility {
    /// `debug crypto isakmp`: phase 1 and phase 2 exchanges.
    Isakmp,
    /// `debug crypto ipsec`: SA installation, deletion, lifetimes, Acquires.
    Ipsec,
    /// `debug crypto engine`: the dataplane link.
    Engine,
}

impl DebugFacility {
    pub const ALL: [DebugFacility; 3] = [
        DebugFacility::Isakmp,
        DebugFacility::Ipsec,
        DebugFacility::Engine,
    ];

    /// IOS's words when the trace is turned on or off (`Crypto ISAKMP debugging is on`).
    pub fn title(self) -> &'static str {
        match self {
            DebugFacility::Isakmp => "Crypto ISAKMP",
            DebugFacility::Ipsec => "Crypto IPSEC",
            DebugFacility::Engine => "Crypto Engine",
        }
    }

    /// A bit for sets of facilities.
    pub fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// Why a line is not a command, with IOS's wording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// A word matches nothing here: `% Invalid input detected at '^' marker.`; `position`
    /// is the byte offset of the word in the line.
    Invalid { position: usize },
    /// A word is a prefix of several keywords: `% Ambiguous command:  "LINE"` where LINE is
    /// the input up to the end of that word.
    Ambiguous { input: String },
    /// The line stops before a command is complete: `% Incomplete command.`
    Incomplete,
}

impl ParseError {
    /// The answer as IOS prints it below a line typed after a prompt `prompt_width`
    /// characters wide (the caret goes under the offending word).
    pub fn render(&self, prompt_width: usize) -> String {
        match self {
            ParseError::Invalid { position } => format!(
                "{}^\n% Invalid input detected at '^' marker.\n\n",
                " ".repeat(prompt_width + position)
            ),
            ParseError::Ambiguous { input } => format!("% Ambiguous command:  \"{input}\"\n"),
            ParseError::Incomplete => "% Incomplete command.\n\n".to_string(),
        }
    }

    /// The answer for a line that was not echoed at a prompt (one-shot `ipsec-ctl`, the
    /// server): the line first, so that the caret has something to point at.
    pub fn render_with_line(&self, line: &str) -> String {
        match self {
            ParseError::Invalid { .. } => format!("{}\n{}", line.trim_end(), self.render(0)),
            _ => self.render(0),
        }
    }
}

/// The message line alone (for logs and JSON): without the caret line.
impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Invalid { position } => write!(
                f,
                "% Invalid input detected at '^' marker (offset {position})."
            ),
            _ => f.write_str(self.render(0).trim_end()),
        }
    }
}

/// An argument's kind and its placeholder in help (`A.B.C.D`, `WORD`, `<1-4294967295>`).
#[derive(Clone, Copy, Debug)]
enum ArgKind {
    Address,
    Word,
    /// A number, decimal or `0x` hex, within the bounds.
    Number {
        min: u32,
        max: u32,
    },
}

/// A word of the tree.
#[derive(Clone, Copy, Debug)]
enum Token {
    Keyword(&'static str),
    Arg(ArgKind),
}

/// What a line's words yielded, for the builders.
#[derive(Default, Debug)]
struct Values {
    keywords: Vec<&'static str>,
    address: Option<IpAddr>,
    word: Option<String>,
    number: Option<u32>,
}

impl Values {
    fn has(&self, keyword: &str) -> bool {
        self.keywords.contains(&keyword)
    }
    fn word(&self) -> String {
        self.word.clone().unwrap_or_default()
    }
}

/// A node of the command tree: a keyword or an argument, its one-line help, what may
/// follow it, and how to build the command when the line may end here.
struct Node {
    token: Token,
    help: &'static str,
    children: &'static [Node],
    build: Option<fn(&Values) -> Command>,
}

const fn kw(
    word: &'static str,
    help: &'static str,
    children: &'static [Node],
    build: Option<fn(&Values) -> Command>,
) -> Node {
    Node {
        token: Token::Keyword(word),
        help,
        children,
        build,
    }
}

const fn arg(
    kind: ArgKind,
    help: &'static str,
    children: &'static [Node],
    build: Option<fn(&Values) -> Command>,
) -> Node {
    Node {
        token: Token::Arg(kind),
        help,
        children,
        build,
    }
}

fn ipsec_sa(v: &Values) -> Command {
    let filter = if let Some(a) = v.address {
        IpsecSaFilter::Peer(a)
    } else if v.has("map") {
        IpsecSaFilter::Map(v.word())
    } else {
        IpsecSaFilter::All
    };
    Command::Show(Show::IpsecSa {
        filter,
        detail: v.has("detail"),
    })
}

fn clear_sa(v: &Values) -> Command {
    Command::ClearSa(if let Some(a) = v.address {
        SaSelector::Peer(a)
    } else if let Some(n) = v.number {
        SaSelector::Spi(n)
    } else if v.has("map") {
        SaSelector::Map(v.word())
    } else {
        SaSelector::All
    })
}

fn facility(v: &Values) -> Option<DebugFacility> {
    if v.has("isakmp") {
        Some(DebugFacility::Isakmp)
    } else if v.has("ipsec") {
        Some(DebugFacility::Ipsec)
    } else if v.has("engine") {
        Some(DebugFacility::Engine)
    } else {
        None
    }
}

const IPSEC_SA_DETAIL: &[Node] = &[kw(
    "detail",
    "Show per-SA packet and drop counters",
    &[],
    Some(ipsec_sa),
)];

const SHOW_IPSEC: &[Node] = &[
    kw(
        "sa",
        "IPSEC SA table",
        &[
            kw(
                "peer",
                "Show SAs of a peer",
                &[arg(
                    ArgKind::Address,
                    "IP address of the peer",
                    IPSEC_SA_DETAIL,
                    Some(ipsec_sa),
                )],
                None,
            ),
            kw(
                "map",
                "Show SAs of a crypto map",
                &[arg(
                    ArgKind::Word,
                    "Crypto map tag",
                    IPSEC_SA_DETAIL,
                    Some(ipsec_sa),
                )],
                None,
            ),
            kw(
                "detail",
                "Show per-SA packet and drop counters",
                &[],
                Some(ipsec_sa),
            ),
        ],
        Some(ipsec_sa),
    ),
    kw(
        "transform-set",
        "Crypto transform sets",
        &[],
        Some(|_| Command::Show(Show::TransformSet)),
    ),
];

const SHOW_ISAKMP: &[Node] = &[
    kw(
        "sa",
        "Show ISAKMP Security Associations",
        &[kw(
            "detail",
            "Show ISAKMP SA Detail",
            &[],
            Some(|_| Command::Show(Show::IsakmpSa { detail: true })),
        )],
        Some(|_| Command::Show(Show::IsakmpSa { detail: false })),
    ),
    kw(
        "policy",
        "Show ISAKMP Protection Suite Policy",
        &[],
        Some(|_| Command::Show(Show::IsakmpPolicy)),
    ),
];

const SHOW_ENGINE: &[Node] = &[
    kw(
        "accelerator",
        "Crypto accelerator (the dataplane's lcores)",
        &[kw(
            "statistics",
            "Per-lcore packet, handoff and drop counters",
            &[],
            Some(|_| Command::Show(Show::EngineStatistics)),
        )],
        None,
    ),
    kw(
        "brief",
        "Crypto engine summary",
        &[],
        Some(|_| Command::Show(Show::EngineBrief)),
    ),
    kw(
        "configuration",
        "Crypto engine configuration",
        &[],
        Some(|_| Command::Show(Show::EngineConfiguration)),
    ),
    kw(
        "connections",
        "Show current crypto engine connections",
        &[kw(
            "active",
            "Show active crypto engine connections",
            &[],
            Some(|_| Command::Show(Show::EngineConnections)),
        )],
        None,
    ),
];

const SHOW_PKI: &[Node] = &[
    kw(
        "certificates",
        "Show certificates",
        &[],
        Some(|_| Command::Show(Show::PkiCertificates)),
    ),
    kw(
        "crls",
        "Show Certificate Revocation Lists",
        &[],
        Some(|_| Command::Show(Show::PkiCrls)),
    ),
    kw(
        "trustpoints",
        "Show trustpoints",
        &[],
        Some(|_| Command::Show(Show::PkiTrustpoints)),
    ),
];

const SHOW_CRYPTO: &[Node] = &[
    kw("engine", "Show crypto engine info", SHOW_ENGINE, None),
    kw("ipsec", "Show IPSEC policy", SHOW_IPSEC, None),
    kw("isakmp", "Show ISAKMP", SHOW_ISAKMP, None),
    kw(
        "map",
        "Crypto maps",
        &[],
        Some(|_| Command::Show(Show::CryptoMap)),
    ),
    kw("pki", "Show PKI", SHOW_PKI, None),
];

const CLEAR_SA: &[Node] = &[
    kw(
        "map",
        "Clear all SAs of a crypto map",
        &[arg(ArgKind::Word, "Crypto map tag", &[], Some(clear_sa))],
        None,
    ),
    kw(
        "peer",
        "Clear all SAs of a peer",
        &[arg(
            ArgKind::Address,
            "IP address of the peer",
            &[],
            Some(clear_sa),
        )],
        None,
    ),
    kw(
        "spi",
        "Clear the SAs of an SPI",
        &[arg(
            ArgKind::Number {
                min: 1,
                max: u32::MAX,
            },
            "SPI (decimal or 0x hex)",
            &[],
            Some(clear_sa),
        )],
        None,
    ),
];

const DEBUG_CRYPTO: &[Node] = &[
    kw(
        "engine",
        "Crypto Engine Debug",
        &[],
        Some(|v| Command::Debug(facility(v).unwrap_or(DebugFacility::Engine))),
    ),
    kw(
        "ipsec",
        "IPSEC processing",
        &[],
        Some(|v| Command::Debug(facility(v).unwrap_or(DebugFacility::Ipsec))),
    ),
    kw(
        "isakmp",
        "ISAKMP Key Management",
        &[],
        Some(|v| Command::Debug(facility(v).unwrap_or(DebugFacility::Isakmp))),
    ),
];

const UNDEBUG_CRYPTO: &[Node] = &[
    kw(
        "engine",
        "Crypto Engine Debug",
        &[],
        Some(|v| Command::Undebug(facility(v))),
    ),
    kw(
        "ipsec",
        "IPSEC processing",
        &[],
        Some(|v| Command::Undebug(facility(v))),
    ),
    kw(
        "isakmp",
        "ISAKMP Key Management",
        &[],
        Some(|v| Command::Undebug(facility(v))),
    ),
];

/// The EXEC commands.
const TREE: &[Node] = &[
    kw(
        "clear",
        "Reset functions",
        &[kw(
            "crypto",
            "Encryption module",
            &[
                kw(
                    "isakmp",
                    "Flush the ISAKMP database (sends DELETE)",
                    &[arg(
                        ArgKind::Number {
                            min: 1,
                            max: u32::MAX,
                        },
                        "connection id of SA",
                        &[],
                        Some(|v| Command::ClearIsakmp(v.number)),
                    )],
                    Some(|_| Command::ClearIsakmp(None)),
                ),
                kw(
                    "sa",
                    "Clear all IPSEC security associations (sends DELETE)",
                    CLEAR_SA,
                    Some(clear_sa),
                ),
            ],
            None,
        )],
        None,
    ),
    kw(
        "crypto",
        "Encryption module",
        &[kw(
            "pki",
            "Public Key components",
            &[kw(
                "crl",
                "Certificate Revocation List",
                &[kw(
                    "request",
                    "Fetch a trustpoint's CRL now",
                    &[arg(
                        ArgKind::Word,
                        "Trustpoint name",
                        &[],
                        Some(|v| Command::CrlRequest(v.word())),
                    )],
                    None,
                )],
                None,
            )],
            None,
        )],
        None,
    ),
    kw(
        "debug",
        "Debugging functions (see also 'undebug')",
        &[kw("crypto", "Cryptographic subsystem", DEBUG_CRYPTO, None)],
        None,
    ),
    kw("exit", "Exit from the EXEC", &[], Some(|_| Command::Exit)),
    kw("quit", "Exit from the EXEC", &[], Some(|_| Command::Exit)),
    kw(
        "reload",
        "Apply the configuration file again, keeping unchanged tunnels",
        &[],
        Some(|_| Command::Reload),
    ),
    kw(
        "show",
        "Show running system information",
        &[
            kw("crypto", "Encryption module", SHOW_CRYPTO, None),
            kw(
                "debugging",
                "State of each debugging option",
                &[],
                Some(|_| Command::Show(Show::Debugging)),
            ),
        ],
        None,
    ),
    kw(
        "undebug",
        "Disable debugging functions (see also 'debug')",
        &[
            kw(
                "all",
                "Disable all debugging",
                &[],
                Some(|_| Command::Undebug(None)),
            ),
            kw("crypto", "Cryptographic subsystem", UNDEBUG_CRYPTO, None),
        ],
        None,
    ),
];

/// The words of a line with their byte offsets.
fn words(line: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                out.push((s, &line[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &line[s..]));
    }
    out
}

fn parse_number(word: &str, min: u32, max: u32) -> Option<u32> {
    let n = match word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
        None => word.parse().ok()?,
    };
    (min..=max).contains(&n).then_some(n)
}

/// How a word matched the nodes of one level.
enum Match<'a> {
    One(&'a Node),
    None,
    Many,
}

/// Matches a word against a level: an exact keyword wins, then a unique keyword prefix,
/// then an argument the word parses as. Keywords are case-insensitive, as in IOS.
fn match_word<'a>(level: &'a [Node], word: &str) -> Match<'a> {
    let lower = word.to_ascii_lowercase();
    let mut prefixed = level.iter().filter(|n| match n.token {
        Token::Keyword(k) => k.starts_with(&lower),
        Token::Arg(_) => false,
    });
    if let Some(exact) = level
        .iter()
        .find(|n| matches!(n.token, Token::Keyword(k) if k == lower))
    {
        return Match::One(exact);
    }
    match (prefixed.next(), prefixed.next()) {
        (Some(n), None) => return Match::One(n),
        (Some(_), Some(_)) => return Match::Many,
        _ => {}
    }
    let arg = level.iter().find(|n| match n.token {
        Token::Arg(ArgKind::Address) => word.parse::<IpAddr>().is_ok(),
        Token::Arg(ArgKind::Word) => true,
        Token::Arg(ArgKind::Number { min, max }) => parse_number(word, min, max).is_some(),
        Token::Keyword(_) => false,
    });
    arg.map_or(Match::None, Match::One)
}

/// Records what a matched word contributes.
fn record(values: &mut Values, node: &Node, word: &str) {
    match node.token {
        Token::Keyword(k) => values.keywords.push(k),
        Token::Arg(ArgKind::Address) => values.address = word.parse().ok(),
        Token::Arg(ArgKind::Word) => values.word = Some(word.to_string()),
        Token::Arg(ArgKind::Number { min, max }) => values.number = parse_number(word, min, max),
    }
}

/// Walks the given words down the tree: the last node matched (None before the first
/// word) and the values, or IOS's error for the first word that does not match.
fn walk(
    line: &str,
    words: &[(usize, &str)],
) -> Result<(Option<&'static Node>, Values), ParseError> {
    let mut level: &'static [Node] = TREE;
    let mut current = None;
    let mut values = Values::default();
    for &(position, word) in words {
        match match_word(level, word) {
            Match::One(node) => {
                record(&mut values, node, word);
                current = Some(node);
                level = node.children;
            }
            Match::None => return Err(ParseError::Invalid { position }),
            Match::Many => {
                return Err(ParseError::Ambiguous {
                    input: line[..position + word.len()].to_string(),
                })
            }
        }
    }
    Ok((current, values))
}

/// Parses a command line. A blank line is `Incomplete` (interactive clients skip blank
/// lines before parsing).
pub fn parse(line: &str) -> Result<Command, ParseError> {
    let words = words(line);
    let (node, values) = walk(line, &words)?;
    match node.and_then(|n| n.build) {
        Some(build) => Ok(build(&values)),
        None => Err(ParseError::Incomplete),
    }
}

/// The children of the node the words lead to (the top level for none).
fn level_after(node: Option<&'static Node>) -> &'static [Node] {
    node.map_or(TREE, |n| n.children)
}

fn placeholder(token: Token) -> String {
    match token {
        Token::Keyword(k) => k.to_string(),
        Token::Arg(ArgKind::Address) => "A.B.C.D".to_string(),
        Token::Arg(ArgKind::Word) => "WORD".to_string(),
        Token::Arg(ArgKind::Number { min, max }) => format!("<{min}-{max}>"),
    }
}

/// The answer to `?` typed after `line` (the text before the `?`), as IOS gives it:
///
/// - after a space (`show crypto ?`): the words that may come next with their help, and
///   `<cr>` when the line is already a command;
/// - right after a word (`sh cr i?`): the keywords that word may be the start of, on one
///   line, or `% Unrecognized command` when none.
pub fn help(line: &str) -> Result<String, ParseError> {
    let all = words(line);
    let partial = !line.is_empty() && !line.ends_with(char::is_whitespace);
    let (complete_words, last) = match (partial, all.split_last()) {
        (true, Some((last, rest))) => (rest, Some(last.1)),
        _ => (&all[..], None),
    };
    let (node, _) = walk(line, complete_words)?;
    let level = level_after(node);
    let mut out = String::new();
    match last {
        Some(prefix) => {
            let lower = prefix.to_ascii_lowercase();
            let names: Vec<&str> = level
                .iter()
                .filter_map(|n| match n.token {
                    Token::Keyword(k) if k.starts_with(&lower) => Some(k),
                    _ => None,
                })
                .collect();
            if names.is_empty() {
                out.push_str("% Unrecognized command\n");
            } else {
                let _ = writeln!(out, "{}", names.join("  "));
            }
            out.push('\n');
        }
        None => {
            let entries: Vec<(String, &str)> = level
                .iter()
                .map(|n| (placeholder(n.token), n.help))
                .collect();
            let width = entries.iter().map(|(w, _)| w.len()).max().unwrap_or(0);
            for (word, text) in &entries {
                let _ = writeln!(out, "  {word:<width$}  {text}");
            }
            if node.is_some_and(|n| n.build.is_some()) {
                out.push_str("  <cr>\n");
            }
            out.push('\n');
        }
    }
    Ok(out)
}

/// Tab completion: the byte offset where the word being completed starts, and the keywords
/// it may complete to (every keyword of the level after a space). Arguments are not
/// completed, as in IOS; a line whose earlier words do not parse has no candidates.
pub fn complete(line: &str) -> (usize, Vec<String>) {
    let all = words(line);
    let partial = !line.is_empty() && !line.ends_with(char::is_whitespace);
    let (complete_words, start, prefix) = match (partial, all.split_last()) {
        (true, Some((last, rest))) => (rest, last.0, last.1.to_ascii_lowercase()),
        _ => (&all[..], line.len(), String::new()),
    };
    let Ok((node, _)) = walk(line, complete_words) else {
        return (start, Vec::new());
    };
    let candidates = level_after(node)
        .iter()
        .filter_map(|n| match n.token {
            Token::Keyword(k) if k.starts_with(&prefix) => Some(k.to_string()),
            _ => None,
        })
        .collect();
    (start, candidates)
}

/// The full words of a parsed line (`sh cr isa sa` -> `show crypto isakmp sa`), for logs
/// and the session history.
pub fn expand(line: &str) -> Result<String, ParseError> {
    let words = words(line);
    let mut level: &'static [Node] = TREE;
    let mut out = Vec::new();
    for &(position, word) in &words {
        match match_word(level, word) {
            Match::One(node) => {
                out.push(match node.token {
                    Token::Keyword(k) => k.to_string(),
                    Token::Arg(_) => word.to_string(),
                });
                level = node.children;
            }
            Match::None => return Err(ParseError::Invalid { position }),
            Match::Many => {
                return Err(ParseError::Ambiguous {
                    input: line[..position + word.len()].to_string(),
                })
            }
        }
    }
    Ok(out.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Command {
        parse(line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    #[test]
    fn abbreviations_of_the_reference() {
        assert_eq!(
            ok("sh cr isa sa"),
            Command::Show(Show::IsakmpSa { detail: false })
        );
        assert_eq!(
            ok("sh cr ipsec sa"),
            Command::Show(Show::IpsecSa {
                filter: IpsecSaFilter::All,
                detail: false
            })
        );
        assert_eq!(
            ok("sh cr en conn ac"),
            Command::Show(Show::EngineConnections)
        );
        assert_eq!(ok("sh cr map"), Command::Show(Show::CryptoMap));
        assert_eq!(ok("sh cr isa policy"), Command::Show(Show::IsakmpPolicy));
        assert_eq!(ok("SHOW Crypto ISAKMP SA"), ok("show crypto isakmp sa"));
        assert_eq!(ok("  sh   cr  isa sa  "), ok("show crypto isakmp sa"));
    }

    #[test]
    fn every_command() {
        let peer: IpAddr = "172.16.172.34".parse().unwrap();
        let cases = [
            (
                "sh cr isa sa det",
                Command::Show(Show::IsakmpSa { detail: true }),
            ),
            (
                "sh cr ips sa peer 172.16.172.34",
                Command::Show(Show::IpsecSa {
                    filter: IpsecSaFilter::Peer(peer),
                    detail: false,
                }),
            ),
            (
                "sh cr ips sa peer 172.16.172.34 det",
                Command::Show(Show::IpsecSa {
                    filter: IpsecSaFilter::Peer(peer),
                    detail: true,
                }),
            ),
            (
                "sh cr ips sa map vpn",
                Command::Show(Show::IpsecSa {
                    filter: IpsecSaFilter::Map("vpn".into()),
                    detail: false,
                }),
            ),
            (
                "sh cr ips sa d",
                Command::Show(Show::IpsecSa {
                    filter: IpsecSaFilter::All,
                    detail: true,
                }),
            ),
            ("sh cr ips tr", Command::Show(Show::TransformSet)),
            ("sh cr en b", Command::Show(Show::EngineBrief)),
            ("sh cr en conf", Command::Show(Show::EngineConfiguration)),
            ("sh cr en acc stat", Command::Show(Show::EngineStatistics)),
            ("sh cr pki cert", Command::Show(Show::PkiCertificates)),
            ("sh cr pki tr", Command::Show(Show::PkiTrustpoints)),
            ("sh cr pki crl", Command::Show(Show::PkiCrls)),
            ("sh deb", Command::Show(Show::Debugging)),
            ("cle cr sa", Command::ClearSa(SaSelector::All)),
            (
                "clear crypto sa peer 172.16.172.34",
                Command::ClearSa(SaSelector::Peer(peer)),
            ),
            (
                "clear crypto sa map vpn",
                Command::ClearSa(SaSelector::Map("vpn".into())),
            ),
            (
                "clear crypto sa spi 0xD740971C",
                Command::ClearSa(SaSelector::Spi(0xD740971C)),
            ),
            (
                "clear crypto sa spi 3611334428",
                Command::ClearSa(SaSelector::Spi(0xD740971C)),
            ),
            ("clear crypto isakmp", Command::ClearIsakmp(None)),
            ("clear cr isa 110", Command::ClearIsakmp(Some(110))),
            ("cr pki crl req vpn", Command::CrlRequest("vpn".into())),
            ("debug crypto isakmp", Command::Debug(DebugFacility::Isakmp)),
            ("deb cr ips", Command::Debug(DebugFacility::Ipsec)),
            ("deb cr en", Command::Debug(DebugFacility::Engine)),
            ("undebug all", Command::Undebug(None)),
            ("u all", Command::Undebug(None)),
            (
                "undebug crypto isakmp",
                Command::Undebug(Some(DebugFacility::Isakmp)),
            ),
            ("reload", Command::Reload),
            ("exit", Command::Exit),
            ("q", Command::Exit),
        ];
        for (line, expected) in cases {
            assert_eq!(ok(line), expected, "{line}");
        }
    }

    /// The trustpoint / map name keeps its case; keywords do not care.
    #[test]
    fn names_keep_their_case() {
        assert_eq!(
            ok("CRYPTO PKI CRL REQUEST WIN2003"),
            Command::CrlRequest("WIN2003".into())
        );
    }

    #[test]
    fn ambiguous_words() {
        let cases = [
            ("c", "c"),
            ("sh cr i sa", "sh cr i"),
            ("sh cr en c", "sh cr en c"),
        ];
        for (line, input) in cases {
            assert_eq!(
                parse(line),
                Err(ParseError::Ambiguous {
                    input: input.into()
                }),
                "{line}"
            );
        }
        assert_eq!(
            parse("sh cr i sa").unwrap_err().render(0),
            "% Ambiguous command:  \"sh cr i\"\n"
        );
    }

    #[test]
    fn invalid_input_caret_under_the_word() {
        let line = "show crypto foo sa";
        let e = parse(line).unwrap_err();
        assert_eq!(e, ParseError::Invalid { position: 12 });
        assert_eq!(
            e.to_string(),
            "% Invalid input detected at '^' marker (offset 12)."
        );
        assert_eq!(ParseError::Incomplete.to_string(), "% Incomplete command.");
        // At a prompt `1720-1#` (7 columns) the caret is under the `f`.
        assert_eq!(
            e.render(7),
            "                   ^\n% Invalid input detected at '^' marker.\n\n"
        );
        assert_eq!(
            e.render_with_line(line),
            "show crypto foo sa\n            ^\n% Invalid input detected at '^' marker.\n\n"
        );
        // Bad arguments and extra words are invalid too.
        assert_eq!(
            parse("sh cr ips sa peer 1.2.3"),
            Err(ParseError::Invalid { position: 18 })
        );
        assert_eq!(
            parse("clear cr isa 0"),
            Err(ParseError::Invalid { position: 13 })
        );
        assert_eq!(
            parse("reload now"),
            Err(ParseError::Invalid { position: 7 })
        );
        assert_eq!(parse("xyzzy"), Err(ParseError::Invalid { position: 0 }));
    }

    #[test]
    fn incomplete_commands() {
        for line in [
            "show",
            "sh cr",
            "sh cr en conn",
            "clear crypto sa peer",
            "",
            "debug crypto",
        ] {
            assert_eq!(parse(line), Err(ParseError::Incomplete), "{line:?}");
        }
        assert_eq!(
            ParseError::Incomplete.render(7),
            "% Incomplete command.\n\n"
        );
    }

    #[test]
    fn help_lists_next_words() {
        assert_eq!(
            help("show crypto ").unwrap(),
            "  engine  Show crypto engine info
  ipsec   Show IPSEC policy
  isakmp  Show ISAKMP
  map     Crypto maps
  pki     Show PKI

"
        );
        assert_eq!(
            help("sh cr isa sa ").unwrap(),
            "  detail  Show ISAKMP SA Detail\n  <cr>\n\n"
        );
        assert_eq!(
            help("clear crypto sa peer ").unwrap(),
            "  A.B.C.D  IP address of the peer\n\n"
        );
        assert!(help("clear crypto isakmp ")
            .unwrap()
            .starts_with("  <1-4294967295>  connection id of SA\n  <cr>\n"));
        let top = help("").unwrap();
        for word in [
            "clear", "crypto", "debug", "exit", "reload", "show", "undebug",
        ] {
            assert!(top.contains(&format!("  {word} ")), "{word}");
        }
    }

    #[test]
    fn help_after_a_partial_word() {
        assert_eq!(help("sh cr i").unwrap(), "ipsec  isakmp\n\n");
        assert_eq!(help("c").unwrap(), "clear  crypto\n\n");
        assert_eq!(help("sh cr zz").unwrap(), "% Unrecognized command\n\n");
        assert_eq!(help("sh zz cr "), Err(ParseError::Invalid { position: 3 }));
    }

    #[test]
    fn completion_candidates() {
        assert_eq!(
            complete("sh cr i"),
            (6, vec!["ipsec".into(), "isakmp".into()])
        );
        assert_eq!(complete("sh cr isa s"), (10, vec!["sa".into()]));
        assert_eq!(complete("sh"), (0, vec!["show".into()]));
        assert_eq!(
            complete("sh cr en "),
            (
                9,
                vec![
                    "accelerator".into(),
                    "brief".into(),
                    "configuration".into(),
                    "connections".into()
                ]
            )
        );
        // Arguments are not completed; nor is anything after a bad word.
        assert_eq!(complete("clear crypto sa peer ").1, Vec::<String>::new());
        assert_eq!(complete("sh bogus cr").1, Vec::<String>::new());
        assert_eq!(complete("").1.len(), TREE.len());
    }

    #[test]
    fn expansion() {
        assert_eq!(
            expand("sh cr en conn ac").unwrap(),
            "show crypto engine connections active"
        );
        assert_eq!(
            expand("cl cr sa peer 10.0.0.1").unwrap(),
            "clear crypto sa peer 10.0.0.1"
        );
    }

    /// Every keyword of every level is reachable by its own unique prefix or in full, and no
    /// two keywords of one level are equal.
    #[test]
    fn tree_is_consistent() {
        fn check(level: &'static [Node]) {
            let mut seen = std::collections::HashSet::new();
            for n in level {
                if let Token::Keyword(k) = n.token {
                    assert!(seen.insert(k), "duplicate {k}");
                    assert!(matches!(match_word(level, k), Match::One(m) if std::ptr::eq(m, n)));
                }
                if n.children.is_empty() {
                    assert!(n.build.is_some(), "dead end at {:?}", n.token);
                }
                check(n.children);
            }
        }
        check(TREE);
    }
}
