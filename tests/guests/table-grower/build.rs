//! Stable Rust cannot emit `table.grow` (WebAssembly inline assembly is
//! unstable), so this script writes a WebAssembly object file with one
//! function, `rescind_table_grow(delta: i32) -> i32`, that grows the
//! module's function table by `delta` null entries and answers the old size
//! (or -1), links it into the component, and asks the linker for a table
//! without a maximum. Only for wasm32: on the host target the crate does
//! not call it.
//!
//! The object follows the WebAssembly tool conventions' object file format
//! (`linking` and `reloc.CODE` sections), so that `wasm-ld` resolves the
//! table to the module's `__indirect_function_table`.

use std::path::PathBuf;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("wasm32") {
        return;
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    let object = out.join("table_grow.o");
    std::fs::write(&object, table_grow_object()).expect("write the object file");
    println!("cargo::rustc-link-arg-cdylib={}", object.display());
    // wasm-ld gives the function table a maximum equal to its size unless
    // asked otherwise: then `table.grow` would fail inside the module,
    // before the host is asked.
    println!("cargo::rustc-link-arg-cdylib=--growable-table");
}

fn table_grow_object() -> Vec<u8> {
    // The function body: locals, then `ref.null func`, `local.get 0`,
    // `table.grow <table>` with the table index as a 5-byte LEB that the
    // linker patches, `end`.
    let mut body = vec![0x00, 0xd0, 0x70, 0x20, 0x00, 0xfc, 0x0f];
    let table_index_at_in_body = body.len();
    body.extend([0x80, 0x80, 0x80, 0x80, 0x00, 0x0b]);
    // The code section: one body, preceded by its size.
    let mut code = vec![0x01];
    code.extend(leb(body.len() as u32));
    let table_index_at = code.len() + table_index_at_in_body;
    code.extend(body);

    let mut module = b"\0asm\x01\0\0\0".to_vec();
    // Type section: (i32) -> i32.
    section(&mut module, 1, &[0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f]);
    // Import section: the table, as every object file imports it.
    let mut imports = vec![0x01];
    imports.extend(name("env"));
    imports.extend(name("__indirect_function_table"));
    imports.extend([0x01, 0x70, 0x00, 0x00]); // table, funcref, min 0
    section(&mut module, 2, &imports);
    // Function section: one function of type 0.
    section(&mut module, 3, &[0x01, 0x00]);
    // Code section (the fourth section: index 3 for the relocation).
    section(&mut module, 10, &code);

    // `linking`, version 2, a symbol table: the function (defined, global)
    // and the table (undefined: the module's own).
    let mut symbols = vec![0x02];
    symbols.extend([0x00, 0x00, 0x00]); // function, flags 0, index 0
    symbols.extend(name("rescind_table_grow"));
    symbols.extend([0x05, 0x10, 0x00]); // table, undefined, import 0
    let mut linking = name("linking");
    linking.extend([0x02, 0x08]); // version 2, symbol table subsection
    linking.extend(leb(symbols.len() as u32));
    linking.extend(symbols);
    section(&mut module, 0, &linking);

    // `reloc.CODE`: R_WASM_TABLE_NUMBER_LEB (20) at the table index,
    // against symbol 1.
    let mut reloc = name("reloc.CODE");
    reloc.extend([0x03, 0x01, 20]);
    reloc.extend(leb(table_index_at as u32));
    reloc.push(0x01);
    section(&mut module, 0, &reloc);
    module
}

fn section(module: &mut Vec<u8>, id: u8, content: &[u8]) {
    module.push(id);
    module.extend(leb(content.len() as u32));
    module.extend_from_slice(content);
}

fn name(text: &str) -> Vec<u8> {
    let mut out = leb(text.len() as u32);
    out.extend_from_slice(text.as_bytes());
    out
}

fn leb(mut value: u32) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}
