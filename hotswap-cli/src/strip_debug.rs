//! `objcopy --strip-debug --add-gnu-debuglink=<file>` done in this process, for the layout
//! rustc's linkers give a 64-bit little-endian ELF shared library (issue 24: the `objcopy`
//! process cost 86–115 ms per build on the benchmark machine). Any other layout gives `None`,
//! and the caller runs `objcopy`.
//!
//! What it does: the loadable part of the file (everything before the first non-loadable
//! section) is kept byte for byte, so nothing the dynamic loader reads moves; the DWARF
//! sections (`.debug*`, not loaded) are left out and their section headers made null entries
//! (`SHT_NULL`), so no section index changes and no symbol or link needs rewriting; the other
//! non-loadable sections (`.symtab`, `.strtab`, `.comment`, …) follow, then `.shstrtab` with the
//! new name, then a `.gnu_debuglink` section (the debug file's name and the CRC-32 of its
//! content), then the section headers. Refused (`None`): another class or byte order, extended
//! section numbering, loadable content after a non-loadable section, a section header table
//! that is not at the end, or a symbol, link or relocation naming a DWARF section.

const SHT_NOBITS: u32 = 8;
const SHT_REL: u32 = 9;
const SHT_RELA: u32 = 4;
const SHT_SYMTAB: u32 = 2;
const SHT_PROGBITS: u32 = 1;
const SHF_ALLOC: u64 = 2;
const SHDR: usize = 64;
const PHDR: usize = 56;
const SYM: usize = 24;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

#[derive(Clone, Copy)]
struct Section {
    name: u32,
    kind: u32,
    flags: u64,
    offset: usize,
    size: usize,
    link: u32,
    info: u32,
    align: usize,
    entsize: usize,
}

fn align_to(out: &mut Vec<u8>, align: usize) {
    let align = align.max(1);
    while !out.len().is_multiple_of(align) {
        out.push(0);
    }
}

/// The library `elf` without its DWARF and with a `.gnu_debuglink` naming `debug_name` whose
/// content is `debug_content`; `None` when the layout is not the one described above.
pub fn strip_debug(elf: &[u8], debug_name: &str, debug_content: &[u8]) -> Option<Vec<u8>> {
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let (phoff, shoff) = (usize::try_from(u64_at(elf, 0x20)?).ok()?, usize::try_from(u64_at(elf, 0x28)?).ok()?);
    let (phentsize, phnum) = (u16_at(elf, 0x36)? as usize, u16_at(elf, 0x38)? as usize);
    let (shentsize, shnum, shstrndx) = (u16_at(elf, 0x3A)? as usize, u16_at(elf, 0x3C)? as usize, u16_at(elf, 0x3E)?);
    if phentsize != PHDR || shentsize != SHDR || shnum == 0 || shstrndx as usize >= shnum {
        return None;
    }
    if shoff.checked_add(shnum * SHDR)? != elf.len() {
        return None;
    }
    let mut load_end = phoff.checked_add(phnum * PHDR)?;
    for i in 0..phnum {
        let at = phoff + i * PHDR;
        let end = usize::try_from(u64_at(elf, at + 8)?.checked_add(u64_at(elf, at + 32)?)?).ok()?;
        load_end = load_end.max(end);
    }
    let mut sections = Vec::with_capacity(shnum);
    for i in 0..shnum {
        let at = shoff + i * SHDR;
        sections.push(Section {
            name: u32_at(elf, at)?,
            kind: u32_at(elf, at + 4)?,
            flags: u64_at(elf, at + 8)?,
            offset: usize::try_from(u64_at(elf, at + 24)?).ok()?,
            size: usize::try_from(u64_at(elf, at + 32)?).ok()?,
            link: u32_at(elf, at + 40)?,
            info: u32_at(elf, at + 44)?,
            align: usize::try_from(u64_at(elf, at + 48)?).ok()?,
            entsize: usize::try_from(u64_at(elf, at + 56)?).ok()?,
        });
    }
    let names = sections[shstrndx as usize];
    let names_bytes = elf.get(names.offset..names.offset.checked_add(names.size)?)?;
    let name_of = |s: &Section| -> Option<&[u8]> {
        let rest = names_bytes.get(s.name as usize..)?;
        Some(&rest[..rest.iter().position(|&b| b == 0)?])
    };
    let in_file = |s: &Section| s.kind != SHT_NOBITS && s.size > 0;
    // Sections outside the loaded part, in file order (index 0 is the null section).
    let mut unloaded: Vec<usize> = (1..shnum).filter(|&i| sections[i].flags & SHF_ALLOC == 0).collect();
    unloaded.sort_by_key(|&i| sections[i].offset);
    let mut dwarf = vec![false; shnum];
    for &i in &unloaded {
        let s = &sections[i];
        if in_file(s) && s.offset.checked_add(s.size)? > shoff {
            return None;
        }
        dwarf[i] = name_of(s)?.starts_with(b".debug") && in_file(s);
    }
    if !dwarf.iter().any(|&d| d) {
        return None;
    }
    let prefix_end = unloaded.iter().filter(|&&i| in_file(&sections[i])).map(|&i| sections[i].offset).min()?;
    if prefix_end < load_end
        || (1..shnum).any(|i| sections[i].flags & SHF_ALLOC != 0 && sections[i].offset > prefix_end)
    {
        return None;
    }
    for s in &sections {
        let linked = |index: u32| dwarf.get(index as usize).copied().unwrap_or(false);
        if linked(s.link) || ((s.kind == SHT_REL || s.kind == SHT_RELA) && linked(s.info)) {
            return None;
        }
        if s.kind == SHT_SYMTAB {
            if s.entsize != SYM {
                return None;
            }
            let table = elf.get(s.offset..s.offset.checked_add(s.size)?)?;
            if table.chunks_exact(SYM).any(|sym| linked(u16::from_le_bytes([sym[6], sym[7]]) as u32)) {
                return None;
            }
        }
    }

    let mut out = Vec::with_capacity(prefix_end + debug_name.len() + 4096);
    out.extend_from_slice(&elf[..prefix_end]);
    let mut new_offsets: Vec<Option<usize>> = vec![None; shnum];
    for &i in &unloaded {
        let s = &sections[i];
        if dwarf[i] || i == shstrndx as usize || !in_file(s) {
            continue;
        }
        align_to(&mut out, s.align);
        new_offsets[i] = Some(out.len());
        out.extend_from_slice(&elf[s.offset..s.offset + s.size]);
    }
    align_to(&mut out, names.align);
    let names_offset = out.len();
    out.extend_from_slice(names_bytes);
    let debuglink_name = names_bytes.len() as u32;
    out.extend_from_slice(b".gnu_debuglink\0");
    let names_size = out.len() - names_offset;
    align_to(&mut out, 4);
    let link_offset = out.len();
    out.extend_from_slice(debug_name.as_bytes());
    out.push(0);
    align_to(&mut out, 4);
    out.extend_from_slice(&crc32fast::hash(debug_content).to_le_bytes());
    let link_size = out.len() - link_offset;
    align_to(&mut out, 8);
    let new_shoff = out.len();
    for (i, s) in sections.iter().enumerate() {
        let mut header = elf[shoff + i * SHDR..shoff + (i + 1) * SHDR].to_vec();
        if dwarf[i] {
            header.fill(0);
        } else if i == shstrndx as usize {
            header[24..32].copy_from_slice(&(names_offset as u64).to_le_bytes());
            header[32..40].copy_from_slice(&(names_size as u64).to_le_bytes());
        } else if let Some(offset) = new_offsets[i] {
            header[24..32].copy_from_slice(&(offset as u64).to_le_bytes());
        } else if s.flags & SHF_ALLOC == 0 && s.offset > prefix_end {
            // Empty or NOBITS: no bytes, but keep its offset inside the file.
            header[24..32].copy_from_slice(&(prefix_end as u64).to_le_bytes());
        }
        out.extend_from_slice(&header);
    }
    let mut link = [0u8; SHDR];
    link[0..4].copy_from_slice(&debuglink_name.to_le_bytes());
    link[4..8].copy_from_slice(&SHT_PROGBITS.to_le_bytes());
    link[24..32].copy_from_slice(&(link_offset as u64).to_le_bytes());
    link[32..40].copy_from_slice(&(link_size as u64).to_le_bytes());
    link[48..56].copy_from_slice(&4u64.to_le_bytes());
    out.extend_from_slice(&link);
    out[0x28..0x30].copy_from_slice(&(new_shoff as u64).to_le_bytes());
    out[0x3C..0x3E].copy_from_slice(&u16::try_from(shnum + 1).ok()?.to_le_bytes());
    Some(out)
}
