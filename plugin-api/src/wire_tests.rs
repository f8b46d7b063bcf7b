//! Plain types through the wire form and back (`shim::to_wire`, then
//! `host::from_wire`), as they cross between a plugin and its host.

use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::std_types::{RNone, RSlice, RSome};

use crate::ffi::{self, List, Str};
use crate::host::from_wire;
use crate::shim::to_wire;
use crate::{
    BinaryLocator, Extraction, ExtractorSpec, LaunchSpec, Manifest, Metric, MetricHint,
    PayloadSpec, Polarity, SchedulerSpec, StopSignal, Stream, ABI_VERSION,
};

fn round_trip(m: &Manifest) -> Manifest {
    from_wire::manifest(to_wire::manifest(m)).expect("a manifest the shim wrote reads back")
}

#[test]
fn payload_manifests_round_trip() {
    let hints = vec![
        MetricHint::new("rate", "ops/s", Polarity::HigherIsBetter),
        MetricHint::new("p99", "us", Polarity::LowerIsBetter),
        MetricHint::new("cpus", "count", Polarity::Neutral),
    ];
    let binary = BinaryLocator::new("schbench", Some("KTSTR_SCHBENCH"), "apt-get install it");
    let spec = PayloadSpec::new(Some(binary), "schbench", Stream::Stderr, "schbench-text")
        .with_default_args(&["-m", "2"])
        .with_checks(&["exit==0", "p99<=5000"])
        .with_hints(hints)
        .with_extra_files(&["/etc/data"])
        .in_callers_process_group()
        .with_default_duration(5)
        .with_grace(7)
        .unbuffered_output()
        .with_requirements(crate::Requirements::default().sched_ext_only().min_cpus(4).min_llcs(2));
    let m = Manifest::payload("schbench", "1.2.3", "a workload", spec);
    assert_eq!(round_trip(&m), m);

    // No binary, no environment override, nothing optional set.
    let inline = PayloadSpec::new(None, "primes", Stream::Stdout, "text")
        .fixed_length(50)
        .with_requirements(crate::Requirements::default().eevdf_only());
    let m = Manifest::payload("primes", "0.1.0", "inline", inline);
    assert_eq!(round_trip(&m), m);
    let locator = BinaryLocator::new("/opt/fio", None, "");
    let m = Manifest::payload(
        "fio",
        "1",
        "",
        PayloadSpec::new(Some(locator), "fio", Stream::Stdout, "json"),
    );
    assert_eq!(round_trip(&m), m);
}

#[test]
fn extractor_and_scheduler_manifests_round_trip() {
    let m = Manifest::extractor("json", "1.0.0", "any JSON", ExtractorSpec::new(&["json", "yaml"]));
    assert_eq!(round_trip(&m), m);
    let m = Manifest::extractor("none", "1.0.0", "", ExtractorSpec::new(&[]));
    assert_eq!(round_trip(&m), m);

    let bpfland = BinaryLocator::new("scx_bpfland", Some("KTSTR_BPFLAND"), "build scx");
    for spec in [
        SchedulerSpec::built_in(),
        SchedulerSpec::sched_ext(bpfland),
        SchedulerSpec::any_sched_ext_binary(),
    ] {
        let m = Manifest::scheduler("sched", "2.0.0", "a scheduler", spec);
        assert_eq!(round_trip(&m), m);
    }
}

#[test]
fn extractions_round_trip() {
    let x = Extraction::from(vec![
        Metric::new("latency/p99", 1234.5, "us"),
        Metric::new("ops", 0.0, ""),
        Metric::new("neg", -1e300, "count"),
    ])
    .with_notes(vec!["test 3 failed: boom".into(), String::new()]);
    assert_eq!(from_wire::extraction(to_wire::extraction(&x)), x);
    let empty = Extraction::default();
    assert_eq!(from_wire::extraction(to_wire::extraction(&empty)), empty);
}

#[test]
fn launch_specs_round_trip() {
    for l in [
        LaunchSpec::built_in(),
        LaunchSpec::sched_ext("scx_simple", Some("simple")),
        LaunchSpec::sched_ext("/opt/scx_qmap", None)
            .with_args(&["-v"])
            .with_timeouts(1, u32::MAX)
            .with_stop_signal(StopSignal::Terminate),
    ] {
        assert_eq!(from_wire::launch(to_wire::launch(&l)).unwrap(), l);
    }
}

/// A wire manifest as a plugin of a later minor might send it: `kind`,
/// and a payload section with `stream` and `hints` when `kind` is a payload.
fn wire_manifest(
    kind: ffi::KindCode,
    stream: ffi::StreamCode,
    hints: Vec<ffi::MetricHintRef>,
) -> ffi::ManifestRef {
    let none: List<Str> = RSlice::from_slice(&[]);
    let payload = ffi::PayloadSpec {
        binary: RNone,
        default_args: none,
        extractor: to_wire::s("future"),
        metric_stream: stream,
        format: to_wire::s("text"),
        default_checks: none,
        metric_hints: to_wire::leak_slice(hints),
        extra_files: none,
        own_process_group: true,
        default_duration_s: 0,
        fixed_length: false,
        grace_s: 0,
        requirements: ffi::Requirements {
            scheduler: ffi::SchedNeedCode::ANY,
            min_cpus: 0,
            min_llcs: 0,
        }
        .leak_into_prefix(),
        line_buffered: true,
    }
    .leak_into_prefix();
    let is_payload = kind == ffi::KindCode::PAYLOAD;
    let extractor = ffi::ExtractorSpec { formats: none }.leak_into_prefix();
    ffi::Manifest {
        name: to_wire::s("future"),
        version: to_wire::s("1.0.0"),
        kind,
        description: to_wire::s(""),
        abi_version: to_wire::s("1.7.0"),
        payload: if is_payload { RSome(payload) } else { RNone },
        extractor: if is_payload { RNone } else { RSome(extractor) },
        scheduler: RNone,
        #[cfg(ktstr_abi_next)]
        homepage: to_wire::s(""),
    }
    .leak_into_prefix()
}

fn hint(polarity: ffi::PolarityCode) -> ffi::MetricHintRef {
    let (name, unit) = (to_wire::s("x"), to_wire::s("us"));
    ffi::MetricHint { name, unit, polarity }.leak_into_prefix()
}

/// The error for a code from a newer minor says so and names this host's ABI.
fn assert_unknown(err: String, what: &str, code: u8) {
    assert!(err.contains(&format!("unknown {what} code {code}")), "{err}");
    assert!(err.contains(&format!("(ABI {ABI_VERSION})")), "{err}");
    assert!(err.contains("the plugin is newer than this host"), "{err}");
}

#[test]
fn unknown_enum_codes_are_errors_naming_the_hosts_abi() {
    let stdout = ffi::StreamCode::STDOUT;
    assert!(from_wire::manifest(wire_manifest(ffi::KindCode::EXTRACTOR, stdout, vec![])).is_ok());
    for code in [3, 200] {
        let err = from_wire::manifest(wire_manifest(ffi::KindCode(code), stdout, vec![]));
        assert_unknown(err.unwrap_err(), "plugin kind", code);
    }
    let m = wire_manifest(ffi::KindCode::PAYLOAD, ffi::StreamCode(2), vec![]);
    assert_unknown(from_wire::manifest(m).unwrap_err(), "stream", 2);

    let l = ffi::LaunchSpec {
        binary: RNone,
        args: RSlice::from_slice(&[]),
        ops_prefix: RNone,
        sched_ext: false,
        stop_signal: ffi::SignalCode(9),
        ready_timeout_ms: 0,
        stop_timeout_ms: 0,
    }
    .leak_into_prefix();
    assert_unknown(from_wire::launch(l).unwrap_err(), "stop signal", 9);
}

#[test]
fn an_unknown_polarity_reads_as_neutral_not_as_an_error() {
    let hints = vec![hint(ffi::PolarityCode::LOWER_IS_BETTER), hint(ffi::PolarityCode(7))];
    let m = wire_manifest(ffi::KindCode::PAYLOAD, ffi::StreamCode::STDERR, hints);
    let m = from_wire::manifest(m).expect("a new polarity does not refuse the plugin");
    let p = m.payload.unwrap();
    assert_eq!(p.metric_stream, Stream::Stderr);
    let polarities: Vec<Polarity> = p.metric_hints.iter().map(|h| h.polarity).collect();
    assert_eq!(polarities, [Polarity::LowerIsBetter, Polarity::Neutral]);
}

/// Two minor versions of one prefix type, and a retyped (major) one. Only
/// their layouts are used.
#[allow(dead_code)]
mod v1 {
    #[repr(C)]
    #[derive(abi_stable::StableAbi)]
    #[sabi(kind(Prefix(prefix_ref = ModRef)))]
    #[sabi(missing_field(option))]
    pub struct Mod {
        #[sabi(last_prefix_field)]
        pub a: u32,
    }
}
#[allow(dead_code)]
mod v2 {
    #[repr(C)]
    #[derive(abi_stable::StableAbi)]
    #[sabi(kind(Prefix(prefix_ref = ModRef)))]
    #[sabi(missing_field(option))]
    pub struct Mod {
        #[sabi(last_prefix_field)]
        pub a: u32,
        pub b: u64,
    }
}
#[allow(dead_code)]
mod retyped {
    #[repr(C)]
    #[derive(abi_stable::StableAbi)]
    #[sabi(kind(Prefix(prefix_ref = ModRef)))]
    #[sabi(missing_field(option))]
    pub struct Mod {
        #[sabi(last_prefix_field)]
        pub a: u64,
        pub b: u64,
    }
}

/// What `host::Library::open` relies on: abi_stable accepts a library with
/// more fields than the host, not fewer, so the host checks an older
/// library's layout the other way round; a retyped field fails both ways.
#[test]
fn abi_stable_accepts_only_newer_libraries_so_the_host_swaps_roles() {
    use abi_stable::abi_stability::abi_checking::check_layout_compatibility as check;
    use abi_stable::StableAbi;
    let (v1, v2) = (<v1::ModRef as StableAbi>::LAYOUT, <v2::ModRef as StableAbi>::LAYOUT);
    let retyped = <retyped::ModRef as StableAbi>::LAYOUT;
    assert!(check(v1, v2).is_ok(), "a 1.0 host, a 1.1 library");
    assert!(check(v2, v1).is_err(), "a 1.1 host, a 1.0 library: refused as is");
    assert!(check(v1, retyped).is_err() && check(retyped, v1).is_err());
    assert!(check(v2, retyped).is_err() && check(retyped, v2).is_err());
}
