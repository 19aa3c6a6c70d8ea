//! A BER-TLV tree for rewriting card answers: parsed leniently, written back with any length form.
//!
//! Written for the fuzz targets, independently of cpx-apdu's reader (which is under test): tags of
//! 1–3 bytes (ISO 7816-4 §5.2.2.1), lengths short or `81`–`84` (ISO 7816-4 §5.2.2.2; `84` is
//! beyond what ISO allows in an APDU, which is the point).

/// One TLV: a tag and either children (constructed, parsed completely) or a value.
#[derive(Debug, Clone)]
pub struct Node {
    pub tag: Vec<u8>,
    pub body: Body,
}

#[derive(Debug, Clone)]
pub enum Body {
    Value(Vec<u8>),
    Children(Vec<Node>),
}

/// How one node's length is written: `form` 0 = minimal, `0x81..=0x84` = that long form;
/// `claim` replaces the true length (a lie the reader must catch).
#[derive(Debug, Clone, Copy)]
pub struct LengthForm {
    pub form: u8,
    pub claim: Option<u32>,
}

fn header(input: &[u8]) -> Option<(Vec<u8>, usize, usize)> {
    let first = *input.first()?;
    let mut at = 1;
    if first & 0x1F == 0x1F {
        while *input.get(at)? & 0x80 != 0 {
            at += 1;
            if at > 3 {
                return None;
            }
        }
        at += 1;
    }
    let tag = input[..at].to_vec();
    let l = *input.get(at)?;
    at += 1;
    let len = match l {
        0..=0x7F => usize::from(l),
        0x81..=0x84 => {
            let n = usize::from(l - 0x80);
            let bytes = input.get(at..at + n)?;
            at += n;
            bytes.iter().fold(0usize, |a, b| (a << 8) | usize::from(*b))
        }
        _ => return None,
    };
    Some((tag, at, len))
}

/// Every TLV of `input`, or `None` when it is not a TLV sequence to the last byte.
pub fn parse(input: &[u8]) -> Option<Vec<Node>> {
    let mut out = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let (tag, hl, len) = header(rest)?;
        let value = rest.get(hl..hl.checked_add(len)?)?;
        let body = match (tag[0] & 0x20 != 0).then(|| parse(value)).flatten() {
            Some(kids) if !value.is_empty() => Body::Children(kids),
            _ => Body::Value(value.to_vec()),
        };
        out.push(Node { tag, body });
        rest = &rest[hl + len..];
    }
    Some(out)
}

fn put_len(out: &mut Vec<u8>, len: usize, form: LengthForm) {
    let len = form.claim.map_or(len, |c| c as usize);
    let n = match form.form {
        0x81..=0x84 => usize::from(form.form - 0x80),
        _ if len < 0x80 => 0,
        _ => (1..=4).find(|n| *n == 4 || len >> (8 * n) == 0).unwrap_or(4),
    };
    if n == 0 {
        out.push(len as u8);
        return;
    }
    out.push(0x80 | n as u8);
    for i in (0..n).rev() {
        out.push((len >> (8 * i)) as u8);
    }
}

/// Write `nodes` back; the node numbered `target` in depth-first order gets `form`, every
/// other length is minimal (and true, enclosing lengths included).
pub fn write(nodes: &[Node], target: usize, form: LengthForm) -> Vec<u8> {
    let mut counter = 0;
    let mut out = Vec::new();
    for n in nodes {
        write_node(n, target, form, &mut counter, &mut out);
    }
    out
}

fn write_node(node: &Node, target: usize, form: LengthForm, counter: &mut usize, out: &mut Vec<u8>) {
    let me = *counter;
    *counter += 1;
    let body = match &node.body {
        Body::Value(v) => v.clone(),
        Body::Children(kids) => {
            let mut b = Vec::new();
            for k in kids {
                write_node(k, target, form, counter, &mut b);
            }
            b
        }
    };
    out.extend_from_slice(&node.tag);
    let minimal = LengthForm { form: 0, claim: None };
    put_len(out, body.len(), if me == target { form } else { minimal });
    out.extend_from_slice(&body);
}

/// Number of nodes, depth first.
pub fn count(nodes: &[Node]) -> usize {
    nodes
        .iter()
        .map(|n| match &n.body {
            Body::Value(_) => 1,
            Body::Children(k) => 1 + count(k),
        })
        .sum()
}
