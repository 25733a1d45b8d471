//! Links the binary without the C runtime's start files, so `_start` in `src/main.rs` is
//! the entry point. The C library is still linked for `memcpy` and `memset`, which the
//! compiler emits calls to and which `core` does not provide on this target. It offers
//! no Rust allocator, so a dependency that needs `alloc` still fails to link.

fn main() {
    println!("cargo:rustc-link-arg-bins=-nostartfiles");
    println!("cargo:rustc-link-lib=c");
    println!("cargo:rerun-if-changed=build.rs");
}
