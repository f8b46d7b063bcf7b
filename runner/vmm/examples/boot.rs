//! Boots a kernel + initramfs with ktstr-vmm and reports how it ended.
//!
//! usage: boot KERNEL INITRAMFS TOPOLOGY MEMORY_MIB OUTDIR [TIMEOUT_S] [CMDLINE...]
//! Output files in OUTDIR: console.log (COM1), data.bin (virtio port `ktstr`),
//! com2.bin (COM2).

use std::path::PathBuf;
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 6 {
        anyhow::bail!(
            "usage: {} KERNEL INITRAMFS TOPOLOGY MEMORY_MIB OUTDIR [TIMEOUT_S] [CMDLINE...]",
            a[0]
        );
    }
    let out = PathBuf::from(&a[5]);
    std::fs::create_dir_all(&out)?;
    let timeout = a.get(6).map(|s| s.parse()).transpose()?.unwrap_or(60u64);
    let cmdline = if a.len() > 7 { a[7..].join(" ") } else { "rdinit=/init panic=-1".into() };
    let cfg = ktstr_vmm::VmConfig {
        kernel: a[1].clone().into(),
        initramfs: vec![a[2].clone().into()],
        cmdline,
        topology: a[3].parse()?,
        memory_mib: a[4].parse()?,
        console_log: out.join("console.log"),
        data_out: out.join("data.bin"),
        data_fallback_out: out.join("com2.bin"),
        disks: Vec::new(),
        shell_socket: None,
    };
    ktstr_vmm::kvm_check()?;
    let start = Instant::now();
    let mut vm = ktstr_vmm::Vm::boot(&cfg)?;
    let reason = match vm.wait_timeout(Duration::from_secs(timeout)) {
        Some(r) => r,
        None => {
            println!("timeout after {timeout} s: killing the VM");
            vm.kill()
        }
    };
    println!("VM ended after {:.2} s: {reason:?}", start.elapsed().as_secs_f64());
    for f in ["console.log", "data.bin", "com2.bin"] {
        let p = out.join(f);
        println!("{}: {} bytes", p.display(), std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0));
    }
    drop(vm);
    // A joined thread can linger in /proc for a moment after pthread_join.
    std::thread::sleep(Duration::from_millis(100));
    let threads = std::fs::read_dir("/proc/self/task")?.count();
    println!("threads left: {threads}");
    Ok(())
}
