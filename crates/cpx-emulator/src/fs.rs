//! The file system: DFs and transparent EFs in an arena, FCP building (docs/card-spec.md §1.3, §8).

use crate::choices::SCB_USER_PIN;
use crate::tlv::tlv;

/// Who may do something to a file (one IAS-ECC SCB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Always,
    Pin,
    Never,
}

impl Access {
    fn scb(self) -> u8 {
        match self {
            Access::Always => 0x00,
            Access::Pin => SCB_USER_PIN,
            Access::Never => 0xFF,
        }
    }
}

/// Read/update rules for one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rules {
    pub(crate) read: Access,
    pub(crate) update: Access,
}

impl Rules {
    pub(crate) const PUBLIC: Rules = Rules {
        read: Access::Always,
        update: Access::Never,
    };
    pub(crate) const PRIVATE: Rules = Rules {
        read: Access::Pin,
        update: Access::Never,
    };
    pub(crate) const WRITABLE: Rules = Rules {
        read: Access::Always,
        update: Access::Pin,
    };
    pub(crate) const NONE: Rules = Rules {
        read: Access::Never,
        update: Access::Never,
    };
}

#[derive(Debug, Clone)]
pub(crate) enum Body {
    Df { aid: Option<Vec<u8>> },
    Ef { data: Vec<u8>, sfi: Option<u8> },
}

#[derive(Debug, Clone)]
pub(crate) struct File {
    pub(crate) fid: u16,
    pub(crate) parent: Option<usize>,
    pub(crate) children: Vec<usize>,
    pub(crate) body: Body,
    /// Contact interface rules (`8C`).
    pub(crate) contact: Rules,
    /// Contactless interface rules (`9C`).
    pub(crate) contactless: Rules,
    /// The FCP/FCI a SELECT answers, served as given instead of the built one (a replayed card's
    /// recorded answer, [`crate::image::FileImage`]): its first byte is the template it answers.
    pub(crate) recorded_fcp: Option<Vec<u8>>,
}

/// Index of the MF in every file system.
pub(crate) const MF: usize = 0;

#[derive(Debug, Clone)]
pub(crate) struct FileSystem {
    pub(crate) files: Vec<File>,
}

impl FileSystem {
    pub(crate) fn new(mf_aid: Option<Vec<u8>>) -> Self {
        Self {
            files: vec![File {
                fid: 0x3F00,
                parent: None,
                children: Vec::new(),
                body: Body::Df { aid: mf_aid },
                contact: Rules::PUBLIC,
                contactless: Rules::PUBLIC,
                recorded_fcp: None,
            }],
        }
    }

    fn push(&mut self, parent: usize, fid: u16, body: Body, contact: Rules, contactless: Rules) -> usize {
        let idx = self.files.len();
        self.files.push(File {
            fid,
            parent: Some(parent),
            children: Vec::new(),
            body,
            contact,
            contactless,
            recorded_fcp: None,
        });
        if let Some(p) = self.files.get_mut(parent) {
            p.children.push(idx);
        }
        idx
    }

    pub(crate) fn add_df(&mut self, parent: usize, fid: u16, aid: Option<Vec<u8>>) -> usize {
        self.push(parent, fid, Body::Df { aid }, Rules::PUBLIC, Rules::PUBLIC)
    }

    pub(crate) fn add_ef(
        &mut self,
        parent: usize,
        fid: u16,
        data: Vec<u8>,
        sfi: Option<u8>,
        contact: Rules,
        contactless: Rules,
    ) -> usize {
        self.push(parent, fid, Body::Ef { data, sfi }, contact, contactless)
    }

    /// Put the EF `path` (FIDs from the MF, 3F00 first) with `content`: an existing EF keeps its
    /// access rules and gets the content, a missing one is added, public, under its DF; a DF of
    /// the path the layout lacks is added, public, without an AID (a field card's application DF
    /// at another path than the model's). The FCP a SELECT answers becomes `fcp` when given.
    /// `false` when an element of the path before the last is an EF, or `path` names a DF.
    pub(crate) fn put_ef(&mut self, path: &[u16], content: Option<Vec<u8>>, fcp: Option<Vec<u8>>) -> bool {
        let Some((&fid, dirs)) = path.split_last() else {
            return false;
        };
        let Some((0x3F00, dirs)) = dirs.split_first().map(|(m, d)| (*m, d)) else {
            return false;
        };
        let mut df = MF;
        for &d in dirs {
            df = match self.child(df, d) {
                Some(c) if self.is_df(c) => c,
                Some(_) => return false,
                None => self.add_df(df, d, None),
            };
        }
        let idx = match self.child(df, fid) {
            Some(idx) if self.is_df(idx) => return false,
            Some(idx) => idx,
            None => self.add_ef(df, fid, Vec::new(), None, Rules::PUBLIC, Rules::PUBLIC),
        };
        if let Some(f) = self.files.get_mut(idx) {
            if let (Body::Ef { data, .. }, Some(content)) = (&mut f.body, content) {
                *data = content;
            }
            f.recorded_fcp = fcp;
        }
        true
    }

    /// Take the EF `path` (FIDs from the MF, 3F00 first) out of its DF: a SELECT no longer finds
    /// it. `false` when there is no such EF.
    pub(crate) fn remove_ef(&mut self, path: &[u16]) -> bool {
        let Some((0x3F00, rest)) = path.split_first().map(|(m, r)| (*m, r)) else {
            return false;
        };
        let Some(idx) = self.walk(MF, rest).filter(|&i| i != MF && !self.is_df(i)) else {
            return false;
        };
        let parent = self.files.get(idx).and_then(|f| f.parent);
        if let Some(p) = parent.and_then(|p| self.files.get_mut(p)) {
            p.children.retain(|&c| c != idx);
        }
        true
    }

    pub(crate) fn get(&self, idx: usize) -> Option<&File> {
        self.files.get(idx)
    }

    pub(crate) fn is_df(&self, idx: usize) -> bool {
        matches!(self.get(idx).map(|f| &f.body), Some(Body::Df { .. }))
    }

    pub(crate) fn child(&self, df: usize, fid: u16) -> Option<usize> {
        self.get(df)?
            .children
            .iter()
            .copied()
            .find(|&c| self.files.get(c).is_some_and(|f| f.fid == fid))
    }

    pub(crate) fn child_by_sfi(&self, df: usize, sfi: u8) -> Option<usize> {
        self.get(df)?.children.iter().copied().find(|&c| {
            matches!(self.files.get(c).map(|f| &f.body), Some(Body::Ef { sfi: Some(s), .. }) if *s == sfi)
        })
    }

    pub(crate) fn by_aid(&self, aid: &[u8]) -> Option<usize> {
        self.files
            .iter()
            .position(|f| matches!(&f.body, Body::Df { aid: Some(a) } if a.as_slice() == aid))
    }

    /// Follow FIDs from `start`; every element but the last must be a DF.
    pub(crate) fn walk(&self, start: usize, fids: &[u16]) -> Option<usize> {
        let mut cur = start;
        for fid in fids {
            if !self.is_df(cur) {
                return None;
            }
            cur = self.child(cur, *fid)?;
        }
        Some(cur)
    }

    /// Absolute path of a file, from 3F00.
    pub(crate) fn path(&self, idx: usize) -> Vec<u16> {
        let mut path = Vec::new();
        let mut cur = Some(idx);
        while let Some(f) = cur.and_then(|i| self.get(i)) {
            path.push(f.fid);
            cur = f.parent;
            if path.len() > self.files.len() {
                break; // a cycle cannot be built, but never loop
            }
        }
        path.reverse();
        path
    }

    pub(crate) fn data(&self, idx: usize) -> Option<&[u8]> {
        match &self.get(idx)?.body {
            Body::Ef { data, .. } => Some(data),
            Body::Df { .. } => None,
        }
    }

    pub(crate) fn data_mut(&mut self, idx: usize) -> Option<&mut Vec<u8>> {
        match &mut self.files.get_mut(idx)?.body {
            Body::Ef { data, .. } => Some(data),
            Body::Df { .. } => None,
        }
    }

    /// The FCP template (tag 62) of a file, IAS-ECC layout (docs/card-spec.md §1.3 real EF.SN.ICC FCP; DFs
    /// carry `A1 { 8C … }` as OpenSC requires, docs/card-spec.md §8).
    pub(crate) fn fcp(&self, idx: usize) -> Option<Vec<u8>> {
        let f = self.get(idx)?;
        if let Some(fcp) = f.recorded_fcp.as_ref().filter(|r| r.first() == Some(&0x62)) {
            return Some(fcp.clone());
        }
        let fid = f.fid.to_be_bytes();
        let mut v = Vec::new();
        match &f.body {
            Body::Ef { data, sfi } => {
                let size = u16::try_from(data.len()).unwrap_or(u16::MAX).to_be_bytes();
                v.extend(tlv(&[0x80], &size));
                v.extend(tlv(&[0x82], &[0x01]));
                v.extend(tlv(&[0x83], &fid));
                if let Some(s) = sfi {
                    v.extend(tlv(&[0x88], &[s << 3]));
                }
                // AM 7B: DELETE, TERMINATE, ACTIVATE, DEACTIVATE, UPDATE, READ.
                let amb = |r: Rules| [0x7B, 0xFF, 0xFF, 0xFF, 0xFF, r.update.scb(), r.read.scb()];
                let mut acl = tlv(&[0x8C], &amb(f.contact));
                acl.extend(tlv(&[0x9C], &amb(f.contactless)));
                v.extend(tlv(&[0xA1], &acl));
                v.extend(tlv(&[0x8A], &[0x05]));
            }
            Body::Df { aid } => {
                v.extend(tlv(&[0x82], &[0x38]));
                v.extend(tlv(&[0x83], &fid));
                if let Some(a) = aid {
                    v.extend(tlv(&[0x84], a));
                }
                v.extend(tlv(&[0x8A], &[0x05]));
                // AM 7B on a DF: DELETE self, TERMINATE, ACTIVATE, DEACTIVATE, CREATE EF, DELETE child.
                let amb = [0x7B, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
                let mut acl = tlv(&[0x8C], &amb);
                acl.extend(tlv(&[0x9C], &amb));
                v.extend(tlv(&[0xA1], &acl));
            }
        }
        Some(tlv(&[0x62], &v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ef_sn_icc_fcp_is_the_real_one() {
        let mut fs = FileSystem::new(None);
        let idx = fs.add_ef(MF, 0xD003, vec![0; 12], Some(0x1C), Rules::PUBLIC, Rules::PUBLIC);
        assert_eq!(fs.fcp(idx).unwrap(), crate::facts::FCP_EF_SN_ICC);
    }
}
