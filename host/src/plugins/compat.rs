//! Whether a component can run here: the checks done before compiling it.
//!
//! Pure policy over the binary (wasmparser only, no wasmtime) so that every
//! refusal is table tested. The compiler and the linker add two more checks
//! later (export types and imports); see [`crate::plugins::PluginRuntime::load`].

use wasmparser::{Encoding, Parser, Payload};

/// The WIT package this host serves.
pub const SUPPORTED_WIT: &str = "rescind:erp@0.1.0";

/// The export the host calls: the `processor` interface of [`SUPPORTED_WIT`].
pub const PROCESSOR_EXPORT: &str = "rescind:erp/processor@0.1.0";

/// The custom section in which the guest SDK stamps its version.
pub const SDK_SECTION: &str = "rescind:sdk";

/// What the guest SDK wrote into the component's `rescind:sdk` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdkStamp {
    /// The rescind-guest version, e.g. `0.1.0`.
    pub sdk: String,
    /// The WIT package the SDK was built for, e.g. `rescind:erp@0.1.0`.
    pub wit: String,
}

/// Why the binary cannot be an integration processor for this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Incompatibility {
    NotWasm,
    CoreModule,
    Malformed(String),
    WrongWorld(Vec<String>),
    IncompatibleSdk(SdkStamp),
    BadSdkStamp(String),
}

/// What the checks learnt about an acceptable component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Inspection {
    /// The SDK stamp, when the component carries one.
    pub stamp: Option<SdkStamp>,
}

/// Checks the binary: WebAssembly, a component, stamped (if at all) for a WIT
/// version this host serves, and exporting [`PROCESSOR_EXPORT`].
pub(crate) fn inspect(bytes: &[u8]) -> Result<Inspection, Incompatibility> {
    if !bytes.starts_with(b"\0asm") {
        return Err(Incompatibility::NotWasm);
    }
    if Parser::is_core_wasm(bytes) {
        return Err(Incompatibility::CoreModule);
    }
    if !Parser::is_component(bytes) {
        return Err(Incompatibility::Malformed(
            "its header names a WebAssembly version or layer this host does not read".into(),
        ));
    }

    let mut exports = Vec::new();
    let mut stamps = Vec::new();
    // `parse_all` walks nested modules and components too: the SDK's stamp
    // lives in the core module that the component embeds, while the exports
    // that matter are those of the outermost component (depth 1).
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| Incompatibility::Malformed(e.to_string()))?;
        match payload {
            Payload::Version { encoding, .. } => {
                depth += 1;
                if depth == 1 && encoding != Encoding::Component {
                    return Err(Incompatibility::CoreModule);
                }
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentExportSection(section) if depth == 1 => {
                for export in section {
                    let export = export.map_err(|e| Incompatibility::Malformed(e.to_string()))?;
                    exports.push(export.name.0.to_owned());
                }
            }
            Payload::CustomSection(section) if section.name() == SDK_SECTION => {
                stamps.push(parse_stamp(section.data()).map_err(Incompatibility::BadSdkStamp)?);
            }
            _ => {}
        }
    }

    // A stamp naming another WIT version explains a missing export better
    // than the export list does, so it is checked first.
    if let Some(foreign) = stamps.iter().find(|s| s.wit != SUPPORTED_WIT) {
        return Err(Incompatibility::IncompatibleSdk(foreign.clone()));
    }
    if !exports.iter().any(|e| e == PROCESSOR_EXPORT) {
        return Err(Incompatibility::WrongWorld(exports));
    }
    Ok(Inspection {
        stamp: stamps.into_iter().next(),
    })
}

/// Reads `sdk=X\nwit=Y\n` (UTF-8, `key=value` lines, unknown keys ignored).
fn parse_stamp(data: &[u8]) -> Result<SdkStamp, String> {
    let text = std::str::from_utf8(data).map_err(|_| "it is not UTF-8".to_owned())?;
    let mut sdk = None;
    let mut wit = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("line `{line}` is not `key=value`"))?;
        match key.trim() {
            "sdk" => sdk = Some(value.trim().to_owned()),
            "wit" => wit = Some(value.trim().to_owned()),
            _ => {}
        }
    }
    match (sdk, wit) {
        (Some(sdk), Some(wit)) => Ok(SdkStamp { sdk, wit }),
        (_, None) => Err("it does not name the WIT package (`wit=`)".to_owned()),
        (None, Some(_)) => Err("it does not name the SDK version (`sdk=`)".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPONENT_HEADER: &[u8] = b"\0asm\x0d\0\x01\0";
    const MODULE_HEADER: &[u8] = b"\0asm\x01\0\0\0";

    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    fn name(s: &str, out: &mut Vec<u8>) {
        leb(s.len(), out);
        out.extend_from_slice(s.as_bytes());
    }

    fn section(id: u8, body: &[u8], out: &mut Vec<u8>) {
        out.push(id);
        leb(body.len(), out);
        out.extend_from_slice(body);
    }

    fn custom(section_name: &str, data: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        name(section_name, &mut body);
        body.extend_from_slice(data);
        let mut out = Vec::new();
        section(0, &body, &mut out);
        out
    }

    /// A component export section exporting instance 0 under each name.
    fn exports(names: &[&str]) -> Vec<u8> {
        let mut body = Vec::new();
        leb(names.len(), &mut body);
        for n in names {
            body.push(0x00); // plain export name
            name(n, &mut body);
            body.push(0x05); // kind: instance
            leb(0, &mut body);
            body.push(0x00); // no type ascription
        }
        let mut out = Vec::new();
        section(11, &body, &mut out);
        out
    }

    /// A core module nested in a component (section id 1), with `inner` sections.
    fn nested_module(inner: &[u8]) -> Vec<u8> {
        let mut module = MODULE_HEADER.to_vec();
        module.extend_from_slice(inner);
        let mut out = Vec::new();
        section(1, &module, &mut out);
        out
    }

    fn component(parts: &[Vec<u8>]) -> Vec<u8> {
        let mut out = COMPONENT_HEADER.to_vec();
        for p in parts {
            out.extend_from_slice(p);
        }
        out
    }

    fn stamp(wit: &str) -> Vec<u8> {
        custom(SDK_SECTION, format!("sdk=0.1.0\nwit={wit}\n").as_bytes())
    }

    #[test]
    fn refusals_and_acceptances() {
        let good_stamp = SdkStamp {
            sdk: "0.1.0".into(),
            wit: SUPPORTED_WIT.into(),
        };
        let cases: Vec<(&str, Vec<u8>, Result<Inspection, Incompatibility>)> = vec![
            (
                "garbage",
                b"hello, world".to_vec(),
                Err(Incompatibility::NotWasm),
            ),
            ("empty", Vec::new(), Err(Incompatibility::NotWasm)),
            (
                "core module",
                MODULE_HEADER.to_vec(),
                Err(Incompatibility::CoreModule),
            ),
            (
                "unknown layer",
                b"\0asm\x0d\0\x09\0".to_vec(),
                Err(Incompatibility::Malformed(
                    "its header names a WebAssembly version or layer this host does not read"
                        .into(),
                )),
            ),
            (
                "stamped, nested stamp, right export",
                component(&[
                    nested_module(&stamp(SUPPORTED_WIT)),
                    exports(&[PROCESSOR_EXPORT]),
                ]),
                Ok(Inspection {
                    stamp: Some(good_stamp.clone()),
                }),
            ),
            (
                "unstamped, right export",
                component(&[exports(&[PROCESSOR_EXPORT])]),
                Ok(Inspection { stamp: None }),
            ),
            (
                "wrong world",
                component(&[stamp(SUPPORTED_WIT), exports(&["wasi:cli/run@0.2.6"])]),
                Err(Incompatibility::WrongWorld(vec![
                    "wasi:cli/run@0.2.6".into(),
                ])),
            ),
            (
                "exports nothing",
                component(&[]),
                Err(Incompatibility::WrongWorld(vec![])),
            ),
            (
                "old sdk",
                component(&[
                    nested_module(&stamp("rescind:erp@0.0.9")),
                    exports(&["rescind:erp/processor@0.0.9"]),
                ]),
                Err(Incompatibility::IncompatibleSdk(SdkStamp {
                    sdk: "0.1.0".into(),
                    wit: "rescind:erp@0.0.9".into(),
                })),
            ),
            (
                "stamp without wit",
                component(&[
                    custom(SDK_SECTION, b"sdk=0.1.0\n"),
                    exports(&[PROCESSOR_EXPORT]),
                ]),
                Err(Incompatibility::BadSdkStamp(
                    "it does not name the WIT package (`wit=`)".into(),
                )),
            ),
            (
                "stamp not utf-8",
                component(&[
                    custom(SDK_SECTION, &[0xff, 0xfe]),
                    exports(&[PROCESSOR_EXPORT]),
                ]),
                Err(Incompatibility::BadSdkStamp("it is not UTF-8".into())),
            ),
        ];
        for (what, bytes, expected) in cases {
            assert_eq!(inspect(&bytes), expected, "{what}");
        }
    }

    #[test]
    fn truncated_component_is_malformed() {
        let mut bytes = component(&[exports(&[PROCESSOR_EXPORT])]);
        bytes.truncate(bytes.len() - 3);
        assert!(matches!(
            inspect(&bytes),
            Err(Incompatibility::Malformed(_))
        ));
    }

    #[test]
    fn stamp_parsing_tolerates_extra_keys_and_spacing() {
        assert_eq!(
            parse_stamp(b" sdk = 0.2.0 \nbuilt=ci\nwit=rescind:erp@0.1.0"),
            Ok(SdkStamp {
                sdk: "0.2.0".into(),
                wit: "rescind:erp@0.1.0".into()
            })
        );
        assert!(parse_stamp(b"sdk 0.1.0").is_err());
    }
}
