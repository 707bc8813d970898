//! What the sandbox keeps the command from touching: the rest of the filesystem, read-only
//! paths inside writable roots, the network.

use std::net::TcpListener;

use shark_sandbox::{run, AccessKind::*, LandlockStatus};

use crate::common::{has, set, Env};

both_legs!(writes_outside_the_roots_are_denied, |env: &Env| {
    let (err, stderr) = env.capture("stderr");
    let mut spec = env.spec(&["sh", "-c", "echo x > ../outside.txt"]);
    spec.stderr = stderr;
    let report = run(spec).unwrap();
    assert_eq!(report.status.code(), 2);
    assert!(std::fs::read_to_string(err)
        .unwrap()
        .contains("Read-only file system"));
    assert!(report.changes.is_empty());
    assert!(!env.root.join("outside.txt").exists());
    assert_eq!(env.accesses(&report), set(&[("outside.txt", Create)]));
    assert_eq!(report.landlock, LandlockStatus::Enforced { abi: 7 });
});

both_legs!(read_only_paths_inside_a_root_stay_read_only, |env: &Env| {
    std::fs::create_dir(env.work.join("ro")).unwrap();
    env.write("work/ro/f", "keep");
    let mut spec = env.spec(&["sh", "-c", "echo x > ro/f; echo y > ro/g; echo ok > fine"]);
    spec.read_only = vec![env.work.join("ro")];
    let report = run(spec).unwrap();
    assert!(report.status.success());
    assert_eq!(env.changes(&report), ["file work/fine 644 \"ok\\n\""]);
    assert_eq!(env.read("work/ro/f"), "keep");
});

both_legs!(
    writes_to_dev_null_and_reads_of_dev_urandom_work,
    |env: &Env| {
        let script = "head -c 8 /dev/urandom > /dev/null && head -c 3 /dev/zero | wc -c";
        let (out, stdout) = env.capture("stdout");
        let mut spec = env.spec(&["sh", "-c", script]);
        spec.stdout = stdout;
        let report = run(spec).unwrap();
        assert!(report.status.success());
        assert_eq!(std::fs::read_to_string(out).unwrap(), "3\n");
        assert!(has(&report, "/dev/urandom", Read));
        assert!(report.changes.is_empty());
    }
);

fn connect_script(port: u16) -> String {
    format!(
        "import socket,sys\ntry:\n socket.create_connection(('127.0.0.1', {port}), timeout=5).sendall(b'hi')\n\
         except ConnectionRefusedError:\n sys.exit(3)"
    )
}

both_legs!(network_is_loopback_only_unless_enabled, |env: &Env| {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = connect_script(port);
    let report = run(env.spec(&["/usr/bin/python3", "-S", "-c", &script])).unwrap();
    assert_eq!(
        report.status.code(),
        3,
        "the host's loopback is out of reach"
    );
    let mut spec = env.spec(&["/usr/bin/python3", "-S", "-c", &script]);
    spec.network = true;
    let report = run(spec).unwrap();
    assert!(report.status.success());
    let (mut conn, _) = listener.accept().unwrap();
    let mut got = String::new();
    std::io::Read::read_to_string(&mut conn, &mut got).unwrap();
    assert_eq!(got, "hi");
});

both_legs!(own_loopback_works_without_network, |env: &Env| {
    let script = "import socket\ns = socket.socket()\ns.bind(('127.0.0.1', 0))\ns.listen()\n\
                  c = socket.create_connection(s.getsockname())\nc.sendall(b'x')\nassert s.accept()[0].recv(1) == b'x'";
    let report = run(env.spec(&["/usr/bin/python3", "-S", "-c", script])).unwrap();
    assert!(report.status.success());
});

const MOUNT_HELPER: &str = "SHARK_SANDBOX_TEST_MOUNT_INSIDE";

/// Not a test on its own: run by `a_mount_inside_a_root_is_a_clear_error` in a mount namespace
/// where the directory named by `SHARK_SANDBOX_TEST_MOUNT_INSIDE` has a tmpfs mounted on `mnt`.
#[test]
fn mount_inside_helper() {
    let Some(dir) = std::env::var_os(MOUNT_HELPER) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let mut spec = shark_sandbox::Spec::new(vec!["true".into()], dir.clone());
    spec.writable_roots = vec![dir.clone()];
    spec.scratch_dir = std::env::temp_dir();
    let err = run(spec).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "invalid sandbox spec: {0}/mnt is a mount point inside the writable root {0}, which \
             overlayfs in a user namespace cannot cover; unmount it or leave {0} out of the \
             writable roots",
            dir.display()
        )
    );
}

both_legs!(a_mount_inside_a_root_is_a_clear_error, |env: &Env| {
    std::fs::create_dir(env.work.join("mnt")).unwrap();
    let exe = std::env::current_exe().unwrap();
    let script =
        r#"mount -t tmpfs none "$1/mnt" && exec "$2" --exact isolation::mount_inside_helper"#;
    let out = std::process::Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(&env.work)
        .arg(exe)
        .env(MOUNT_HELPER, &env.work)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}"
    );
});

both_legs!(
    hidden_paths_show_an_empty_read_only_directory,
    |env: &Env| {
        std::fs::create_dir(env.root.join("secret")).unwrap();
        env.write("secret/data", "do not read");
        let (out, stdout) = env.capture("stdout");
        let script = format!(
            "ls -A {0}; cat {0}/data; touch {0}/new && echo wrote",
            env.root.join("secret").display()
        );
        let mut spec = env.spec(&["sh", "-c", &script]);
        spec.hidden = vec![env.root.join("secret"), env.root.join("missing")];
        spec.stdout = stdout;
        let report = run(spec).unwrap();
        assert!(!report.status.success());
        assert_eq!(std::fs::read_to_string(out).unwrap(), "");
        assert_eq!(env.read("secret/data"), "do not read");
    }
);

both_legs!(
    kernel_interfaces_are_protected_even_for_root,
    |env: &Env| {
        // Writes to sysctls would change the host; /proc/keys and /proc/timer_list reveal it
        // (this kernel has no /proc/kcore or /proc/sysrq-trigger; where they exist they are
        // masked and read-only alike).
        let (out, stdout) = env.capture("stdout");
        let script = "echo 61 > /proc/sys/vm/swappiness 2>/dev/null && echo wrote-sysctl; \
                  echo h > /proc/sysrq-trigger 2>/dev/null && echo wrote-sysrq; \
                  cat /proc/keys | wc -c; cat /proc/timer_list 2>/dev/null | wc -c; \
                  cat /proc/sys/vm/swappiness > /dev/null && echo readable";
        let mut spec = env.spec(&["sh", "-c", script]);
        spec.stdout = stdout;
        let before = std::fs::read_to_string("/proc/sys/vm/swappiness").unwrap();
        let report = run(spec).unwrap();
        assert!(report.status.success());
        assert_eq!(std::fs::read_to_string(out).unwrap(), "0\n0\nreadable\n");
        assert_eq!(
            std::fs::read_to_string("/proc/sys/vm/swappiness").unwrap(),
            before
        );
    }
);

both_legs!(namespaces_mounts_and_keyrings_are_refused, |env: &Env| {
    // A nested sandbox would hide what runs in it; a bind mount would show files under names
    // shark does not record; the keyrings are the host's.
    let (out, stdout) = env.capture("stdout");
    let script = "unshare -Ur true 2>/dev/null || echo no-unshare; \
                  mkdir m; mount -t tmpfs none m 2>/dev/null || echo no-mount; \
                  python3 -c 'import ctypes,os; l=ctypes.CDLL(None,use_errno=True); \
                  print(\"no-keyctl\" if l.syscall(250, 0, 0) < 0 and ctypes.get_errno() == 1 else \"keyctl\")'; \
                  python3 -c 'import threading; t=threading.Thread(target=print, args=(\"threads\",)); t.start(); t.join()'; \
                  sh -c 'echo processes'";
    let mut spec = env.spec(&["sh", "-c", script]);
    spec.stdout = stdout;
    let report = run(spec).unwrap();
    assert!(report.status.success());
    assert_eq!(
        std::fs::read_to_string(out).unwrap(),
        "no-unshare\nno-mount\nno-keyctl\nthreads\nprocesses\n"
    );
});

const CONNECT_PY: &str = r#"
import errno, os, socket, sys
for path in sys.argv[1:]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        print(path.rsplit('/', 1)[-1], "connected")
    except OSError as e:
        print(path.rsplit('/', 1)[-1], errno.errorcode[e.errno])
# A socket the command makes itself, in its own folder.
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind("own.sock")
srv.listen(1)
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.connect("own.sock")
print("own.sock connected")
"#;

both_legs!(
    host_unix_sockets_outside_the_roots_are_unreachable,
    |env: &Env| {
        use std::os::unix::net::UnixListener;
        let outside = env.root.join("outside.sock");
        let inside = env.work.join("inside.sock");
        let _ = &inside;
        let _a = UnixListener::bind(&outside).unwrap();
        let _b = UnixListener::bind(&inside).unwrap();
        // A symlink in the writable folder does not lead outside either.
        std::os::unix::fs::symlink(&outside, env.work.join("link.sock")).unwrap();
        let (out, stdout) = env.capture("stdout");
        let argv = [
            "/usr/bin/python3",
            "-S",
            "-c",
            CONNECT_PY,
            outside.to_str().unwrap(),
            "link.sock",
            "inside.sock",
        ];
        let mut spec = env.spec(&argv);
        spec.stdout = stdout;
        let report = run(spec).unwrap();
        assert!(report.status.success(), "{:?}", report.status);
        assert_eq!(
            std::fs::read_to_string(out).unwrap(),
            "outside.sock EACCES\nlink.sock EACCES\ninside.sock ECONNREFUSED\nown.sock connected\n"
        );
        // The overlay over the writable folder hides the host's listener there; a socket the
        // command bound itself is its own business.
        assert!(report.services.is_empty(), "{:?}", report.services);
    }
);

both_legs!(
    host_abstract_sockets_are_unreachable_even_with_the_network,
    |env: &Env| {
        // With the network on, the sandbox shares the host's network namespace, where abstract
        // sockets (a session bus, X11) live; Landlock scopes them to the sandbox.
        use std::os::linux::net::SocketAddrExt;
        let name = format!("shark-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let _listener = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
        let code = format!(
        "import socket\ns=socket.socket(socket.AF_UNIX)\n\
         try:\n s.connect('\\0{name}'); print('connected')\nexcept OSError as e: print('refused', e.errno)"
    );
        let (out, stdout) = env.capture("stdout");
        let mut spec = env.spec(&["/usr/bin/python3", "-S", "-c", &code]);
        spec.network = true;
        spec.stdout = stdout;
        let report = run(spec).unwrap();
        assert!(report.status.success());
        assert_eq!(
            std::fs::read_to_string(out).unwrap(),
            format!("refused {}\n", libc::EPERM)
        );
    }
);

both_legs!(nothing_can_be_typed_into_the_terminal, |env: &Env| {
    // TIOCSTI pushes characters into a terminal's input: once the command exits, the user's
    // shell would read them as typed commands.
    let pty = nix::pty::openpty(None, None).unwrap();
    // The terminal is made the process's controlling one, where TIOCSTI would otherwise work.
    let code = "import fcntl, os, termios\nos.setsid()\nfcntl.ioctl(0, termios.TIOCSCTTY, 0)\n\
                try:\n  fcntl.ioctl(0, termios.TIOCSTI, b'x'); print('typed')\n\
                except PermissionError: print('refused')";
    let (out, stdout) = env.capture("stdout");
    let mut spec = env.spec(&["/usr/bin/python3", "-S", "-c", code]);
    spec.stdin = shark_sandbox::Stdio::Fd(pty.slave);
    spec.stdout = stdout;
    let report = run(spec).unwrap();
    assert!(report.status.success());
    assert_eq!(std::fs::read_to_string(out).unwrap(), "refused\n");
});
