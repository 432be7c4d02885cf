//! Keyset pagination: the page size, the sort orders of the project list, the
//! position a page ends at, and the cursor payload that carries it between
//! requests.
//!
//! A cursor is bound to the query it was made for (sort, scope, status), so
//! that a cursor from one list cannot silently continue another. Encoding and
//! signing the payload is the HTTP layer's job; this module only says what is
//! in it and when it fits a query.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{ProjectId, ProjectStatus, Timestamp, UserId};

/// How many items a page holds: 1 to 100, 20 by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limit(u8);

/// The limit was outside 1..=100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("`limit` must be between {min} and {max}", min = Limit::MIN, max = Limit::MAX)]
pub struct InvalidLimit;

impl Limit {
    pub const MIN: u8 = 1;
    pub const MAX: u8 = 100;
    pub const DEFAULT: Limit = Limit(20);

    pub fn new(value: i64) -> Result<Self, InvalidLimit> {
        u8::try_from(value)
            .ok()
            .filter(|value| (Self::MIN..=Self::MAX).contains(value))
            .map(Self)
            .ok_or(InvalidLimit)
    }

    pub const fn get(self) -> u8 {
        self.0
    }
}

impl Default for Limit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The orders the project list offers; ties are broken by id in the same
/// direction, so that every order is total.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[schema(example = "-created_at")]
pub enum ProjectSort {
    #[serde(rename = "created_at")]
    CreatedAtAsc,
    /// Newest first: the default.
    #[default]
    #[serde(rename = "-created_at")]
    CreatedAtDesc,
    #[serde(rename = "name")]
    NameAsc,
    #[serde(rename = "-name")]
    NameDesc,
}

/// The sort was not one the list offers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`sort` must be one of `created_at`, `-created_at`, `name`, `-name`")]
pub struct InvalidSort;

impl ProjectSort {
    pub const ALL: [ProjectSort; 4] = [
        ProjectSort::CreatedAtAsc,
        ProjectSort::CreatedAtDesc,
        ProjectSort::NameAsc,
        ProjectSort::NameDesc,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ProjectSort::CreatedAtAsc => "created_at",
            ProjectSort::CreatedAtDesc => "-created_at",
            ProjectSort::NameAsc => "name",
            ProjectSort::NameDesc => "-name",
        }
    }

    pub const fn descending(self) -> bool {
        matches!(self, ProjectSort::CreatedAtDesc | ProjectSort::NameDesc)
    }

    pub const fn by_name(self) -> bool {
        matches!(self, ProjectSort::NameAsc | ProjectSort::NameDesc)
    }

    /// Where `project` stands in this order: the cursor key after it.
    pub fn key_of(self, project: crate::ProjectView<'_>) -> ProjectKey {
        if self.by_name() {
            ProjectKey::Name {
                name: project.name.to_owned(),
                id: project.id,
            }
        } else {
            ProjectKey::CreatedAt {
                created_at: project.created_at,
                id: project.id,
            }
        }
    }
}

impl fmt::Display for ProjectSort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProjectSort {
    type Err = InvalidSort;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProjectSort::ALL
            .into_iter()
            .find(|sort| sort.as_str() == s)
            .ok_or(InvalidSort)
    }
}

/// Whose projects a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectScope {
    /// One owner's projects: the caller's own, or (admins) anyone's.
    Owner(UserId),
    /// Every project (admins only).
    All,
}

/// One list request, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectListQuery {
    pub scope: ProjectScope,
    pub status: Option<ProjectStatus>,
    pub sort: ProjectSort,
    pub limit: Limit,
}

/// The last row of a page in the page's order: its sort column and its id.
/// Timestamps travel as RFC 3339 with every fractional digit, so that the key
/// compares exactly equal to the stored (microsecond) value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectKey {
    CreatedAt {
        #[serde(with = "crate::rfc3339")]
        created_at: Timestamp,
        id: ProjectId,
    },
    Name {
        name: String,
        id: ProjectId,
    },
}

impl ProjectKey {
    /// Whether this key can continue a list in `sort`.
    pub fn fits(&self, sort: ProjectSort) -> bool {
        matches!(self, ProjectKey::Name { .. }) == sort.by_name()
    }

    pub fn id(&self) -> ProjectId {
        match self {
            ProjectKey::CreatedAt { id, .. } | ProjectKey::Name { id, .. } => *id,
        }
    }
}

/// What a project list cursor carries: the query it belongs to and the key
/// of the last row it showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectCursor {
    pub sort: ProjectSort,
    pub scope: ProjectScope,
    pub status: Option<ProjectStatus>,
    pub after: ProjectKey,
}

impl ProjectCursor {
    /// The cursor as compact bytes: sort, scope, status, then the key (a
    /// creation time as nanoseconds since the epoch, or a name) and the id.
    /// With a creation-time key it is 52 bytes, so that it and its HMAC
    /// padding fit one SHA-256 block (its JSON took four: the HMAC was the
    /// largest part of a list's cost after the rows).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(56);
        out.push(sort_index(self.sort));
        match self.scope {
            ProjectScope::All => out.push(0),
            ProjectScope::Owner(owner) => {
                out.push(1);
                out.extend_from_slice(owner.as_uuid().as_bytes());
            }
        }
        out.push(match self.status {
            None => 0,
            Some(status) => 1 + status_index(status),
        });
        match &self.after {
            ProjectKey::CreatedAt { created_at, id } => {
                out.push(0);
                out.extend_from_slice(&created_at.unix_timestamp_nanos().to_be_bytes());
                out.extend_from_slice(id.as_uuid().as_bytes());
            }
            ProjectKey::Name { name, id } => {
                out.push(1);
                // Names are at most 200 characters (800 bytes).
                let len = u16::try_from(name.len()).unwrap_or(u16::MAX);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&name.as_bytes()[..usize::from(len)]);
                out.extend_from_slice(id.as_uuid().as_bytes());
            }
        }
        out
    }

    /// The cursor `to_bytes` wrote, or `None` for any other bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let mut reader = Reader(bytes);
        let sort = *ProjectSort::ALL.get(usize::from(reader.byte()?))?;
        let scope = match reader.byte()? {
            0 => ProjectScope::All,
            1 => ProjectScope::Owner(UserId::from_uuid(reader.uuid()?)),
            _ => return None,
        };
        let status = match reader.byte()? {
            0 => None,
            n => Some(*ProjectStatus::ALL.get(usize::from(n - 1))?),
        };
        let after = match reader.byte()? {
            0 => {
                let nanos = i128::from_be_bytes(reader.take(16)?.try_into().ok()?);
                ProjectKey::CreatedAt {
                    created_at: Timestamp::from_unix_timestamp_nanos(nanos).ok()?,
                    id: ProjectId::from_uuid(reader.uuid()?),
                }
            }
            1 => {
                let len = u16::from_be_bytes(reader.take(2)?.try_into().ok()?);
                let name = std::str::from_utf8(reader.take(usize::from(len))?).ok()?;
                ProjectKey::Name {
                    name: name.to_owned(),
                    id: ProjectId::from_uuid(reader.uuid()?),
                }
            }
            _ => return None,
        };
        reader.0.is_empty().then_some(Self {
            sort,
            scope,
            status,
            after,
        })
    }

    /// Whether this cursor was made for `query` (the limit may change
    /// between pages; nothing else may).
    pub fn belongs_to(&self, query: &ProjectListQuery) -> bool {
        self.sort == query.sort
            && self.scope == query.scope
            && self.status == query.status
            && self.after.fits(query.sort)
    }
}

/// Reads `ProjectCursor::to_bytes`' fields in order.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.0.split_at_checked(n)?;
        self.0 = tail;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn uuid(&mut self) -> Option<uuid::Uuid> {
        uuid::Uuid::from_slice(self.take(16)?).ok()
    }
}

fn sort_index(sort: ProjectSort) -> u8 {
    match sort {
        ProjectSort::CreatedAtAsc => 0,
        ProjectSort::CreatedAtDesc => 1,
        ProjectSort::NameAsc => 2,
        ProjectSort::NameDesc => 3,
    }
}

fn status_index(status: ProjectStatus) -> u8 {
    match status {
        ProjectStatus::Active => 0,
        ProjectStatus::Archived => 1,
        ProjectStatus::Completed => 2,
    }
}

/// The rows of one page as the store returns them, with the key to continue
/// after, if more rows follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice<T, K> {
    pub items: Vec<T>,
    pub next: Option<K>,
}

impl<T, K> Slice<T, K> {
    /// The slice of a fetch of `limit + 1` rows: the extra row only tells
    /// that more follow, and `next` is then the key of the last row kept.
    pub fn from_overfetch(mut rows: Vec<T>, limit: usize, key: impl FnOnce(&T) -> K) -> Self {
        if rows.len() <= limit {
            return Self {
                items: rows,
                next: None,
            };
        }
        rows.truncate(limit);
        let next = rows.last().map(key);
        Self { items: rows, next }
    }
}

/// A page as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// The items of this page, in the list's order.
    pub data: Vec<T>,
    /// Pass it as `cursor` to get the next page; `null` on the last page.
    #[schema(required = true, example = "AZNvTo0qezyeHyo7TF1ufw")]
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursors() -> Vec<ProjectCursor> {
        let at = time::macros::datetime!(2026-11-30 05:40:00.123456 UTC);
        let id = ProjectId::new();
        let mut all = Vec::new();
        for sort in ProjectSort::ALL {
            for scope in [ProjectScope::All, ProjectScope::Owner(UserId::new())] {
                for status in [
                    None,
                    Some(ProjectStatus::Archived),
                    Some(ProjectStatus::Completed),
                ] {
                    let after = if sort.by_name() {
                        ProjectKey::Name {
                            name: "Äpollo \"7\" 🚀".into(),
                            id,
                        }
                    } else {
                        ProjectKey::CreatedAt { created_at: at, id }
                    };
                    all.push(ProjectCursor {
                        sort,
                        scope,
                        status,
                        after,
                    });
                }
            }
        }
        all
    }

    #[test]
    fn cursor_bytes_read_back_and_a_time_key_fits_one_sha256_block() {
        for cursor in cursors() {
            let bytes = cursor.to_bytes();
            assert_eq!(ProjectCursor::from_bytes(&bytes), Some(cursor.clone()));
            if !cursor.sort.by_name() {
                // With HMAC's 0x80 and 64-bit length: at most 64 bytes.
                assert!(bytes.len() + 9 <= 64, "{}", bytes.len());
            }
            // Any shorter, longer or altered-tag version is refused.
            for len in 0..bytes.len() {
                assert_eq!(ProjectCursor::from_bytes(&bytes[..len]), None);
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(ProjectCursor::from_bytes(&longer), None);
            // Sort, scope tag, status, key tag.
            let status_at = if cursor.scope == ProjectScope::All {
                2
            } else {
                18
            };
            for (at, bad) in [(0, 4u8), (1, 2), (status_at, 4), (status_at + 1, 2)] {
                let mut altered = bytes.clone();
                altered[at] = bad;
                assert_eq!(ProjectCursor::from_bytes(&altered), None);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn fuzz_cursor_bytes_read_back_or_are_refused(
            raw in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
            name in "\\PC{0,200}",
            nanos in -377_705_116_800_000_000_000i128..253_402_300_799_999_999_999i128,
        ) {
            // Arbitrary bytes: a cursor or None, never a panic; a cursor
            // read from them writes the same bytes back.
            if let Some(cursor) = ProjectCursor::from_bytes(&raw) {
                proptest::prop_assert_eq!(cursor.to_bytes(), raw);
            }
            let id = ProjectId::new();
            for after in [
                ProjectKey::Name { name: name.clone(), id },
                ProjectKey::CreatedAt {
                    created_at: Timestamp::from_unix_timestamp_nanos(nanos).expect("in range"),
                    id,
                },
            ] {
                let sort = if after.fits(ProjectSort::NameAsc) { ProjectSort::NameDesc } else { ProjectSort::CreatedAtAsc };
                let cursor = ProjectCursor { sort, scope: ProjectScope::All, status: None, after };
                proptest::prop_assert_eq!(ProjectCursor::from_bytes(&cursor.to_bytes()), Some(cursor));
            }
        }
    }

    #[test]
    fn an_overfetch_keeps_limit_rows_and_names_the_last_one_next() {
        let more = Slice::from_overfetch(vec![1, 2, 3], 2, |row| row * 10);
        assert_eq!(more.items, vec![1, 2]);
        assert_eq!(more.next, Some(20));
        let last = Slice::from_overfetch(vec![1, 2], 2, |row| row * 10);
        assert_eq!(last.items, vec![1, 2]);
        assert_eq!(last.next, None);
        let empty = Slice::from_overfetch(Vec::<i32>::new(), 2, |row| *row);
        assert!(empty.items.is_empty() && empty.next.is_none());
    }

    #[test]
    fn limits_are_between_1_and_100() {
        assert_eq!(Limit::default().get(), 20);
        assert_eq!(Limit::new(1).map(Limit::get), Ok(1));
        assert_eq!(Limit::new(100).map(Limit::get), Ok(100));
        for bad in [0, 101, -1, 256, i64::MAX] {
            assert_eq!(Limit::new(bad), Err(InvalidLimit), "{bad}");
        }
    }

    #[test]
    fn sorts_parse_and_default_to_newest_first() {
        for sort in ProjectSort::ALL {
            assert_eq!(sort.as_str().parse::<ProjectSort>(), Ok(sort));
        }
        assert_eq!(ProjectSort::default(), ProjectSort::CreatedAtDesc);
        assert!("id".parse::<ProjectSort>().is_err());
        assert!("+name".parse::<ProjectSort>().is_err());
    }

    #[test]
    fn keys_keep_every_microsecond() {
        let key = ProjectKey::CreatedAt {
            created_at: time::macros::datetime!(2026-01-02 03:04:05.000123 UTC),
            id: ProjectId::new(),
        };
        let json = serde_json::to_string(&key).expect("serialises");
        assert_eq!(serde_json::from_str::<ProjectKey>(&json).ok(), Some(key));
    }

    #[test]
    fn a_cursor_belongs_only_to_its_own_query() {
        let owner = UserId::new();
        let query = ProjectListQuery {
            scope: ProjectScope::Owner(owner),
            status: Some(ProjectStatus::Active),
            sort: ProjectSort::NameAsc,
            limit: Limit::default(),
        };
        let cursor = ProjectCursor {
            sort: ProjectSort::NameAsc,
            scope: ProjectScope::Owner(owner),
            status: Some(ProjectStatus::Active),
            after: ProjectKey::Name {
                name: "a".into(),
                id: ProjectId::new(),
            },
        };
        assert!(cursor.belongs_to(&query));
        let other_limit = ProjectListQuery {
            limit: Limit(1),
            ..query.clone()
        };
        assert!(cursor.belongs_to(&other_limit));
        for other in [
            ProjectListQuery {
                sort: ProjectSort::NameDesc,
                ..query.clone()
            },
            ProjectListQuery {
                scope: ProjectScope::All,
                ..query.clone()
            },
            ProjectListQuery {
                scope: ProjectScope::Owner(UserId::new()),
                ..query.clone()
            },
            ProjectListQuery {
                status: None,
                ..query.clone()
            },
        ] {
            assert!(!cursor.belongs_to(&other), "{other:?}");
        }
        let mismatched_key = ProjectCursor {
            after: ProjectKey::CreatedAt {
                created_at: time::OffsetDateTime::UNIX_EPOCH,
                id: ProjectId::new(),
            },
            ..cursor
        };
        assert!(!mismatched_key.belongs_to(&query));
    }
}
