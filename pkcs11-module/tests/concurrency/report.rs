//! A worker's counts, as one line of JSON on its stdout (flat, integers only: no JSON crate
//! needed on either side).

/// What one worker process did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Signatures the module returned.
    pub signatures: u64,
    /// Of those, the ones that verified against the key's certificate.
    pub verified: u64,
    /// C_FindObjects listings that gave the expected objects.
    pub listings: u64,
    /// Calls that failed, or listings that did not give the expected objects.
    pub unexpected: u64,
    /// Calls that failed with CKR_USER_NOT_LOGGED_IN (the card logged out under us).
    pub not_logged_in: u64,
}

const FIELDS: [&str; 5] = [
    "signatures",
    "verified",
    "listings",
    "unexpected",
    "not_logged_in",
];

impl Report {
    fn fields(&self) -> [u64; 5] {
        [
            self.signatures,
            self.verified,
            self.listings,
            self.unexpected,
            self.not_logged_in,
        ]
    }

    /// `{"signatures":1,…}`.
    pub fn to_json(&self) -> String {
        let body: Vec<String> = FIELDS
            .iter()
            .zip(self.fields())
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect();
        format!("{{{}}}", body.join(","))
    }

    /// The inverse of [`to_json`](Self::to_json); every field must be there.
    pub fn parse(line: &str) -> Result<Report, String> {
        let body = line
            .strip_prefix('{')
            .and_then(|l| l.strip_suffix('}'))
            .ok_or_else(|| format!("not a report: {line:?}"))?;
        let mut values = [None; 5];
        for pair in body.split(',') {
            let (k, v) = pair.split_once(':').ok_or_else(|| format!("bad pair {pair:?}"))?;
            let k = k.trim().trim_matches('"');
            let i = FIELDS
                .iter()
                .position(|f| *f == k)
                .ok_or_else(|| format!("unknown field {k:?}"))?;
            values[i] = Some(v.trim().parse::<u64>().map_err(|e| format!("{k}: {e}"))?);
        }
        let get = |i: usize| values[i].ok_or_else(|| format!("missing {} in {line:?}", FIELDS[i]));
        Ok(Report {
            signatures: get(0)?,
            verified: get(1)?,
            listings: get(2)?,
            unexpected: get(3)?,
            not_logged_in: get(4)?,
        })
    }

    /// Field-wise sum.
    pub fn sum(reports: &[Report]) -> Report {
        reports.iter().fold(Report::default(), |a, r| Report {
            signatures: a.signatures + r.signatures,
            verified: a.verified + r.verified,
            listings: a.listings + r.listings,
            unexpected: a.unexpected + r.unexpected,
            not_logged_in: a.not_logged_in + r.not_logged_in,
        })
    }
}
