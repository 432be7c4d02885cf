//! The projects repository against a real PostgreSQL: visibility inside
//! every statement, partial updates with optimistic concurrency, keyset
//! pages that never repeat or skip a row, and list plans served by indexes.

use std::collections::HashSet;

use projects_domain::inputs::{NewProject, ProjectPatch};
use projects_domain::{
    Email, Limit, ProjectAccess, ProjectId, ProjectKey, ProjectListQuery, ProjectScope,
    ProjectSort, ProjectStatus, Role, UserId,
};
use projects_store::{NewUser, PlanKind, ProjectRow, ProjectUpdate, Store, StoreError};
use projects_testkit::TestDb;

async fn user(store: &Store, email: &str) -> UserId {
    user_with_role(store, email, Role::User).await
}

async fn user_with_role(store: &Store, email: &str, role: Role) -> UserId {
    store
        .users()
        .insert(&NewUser {
            email: Email::parse(email).expect("valid email"),
            name: "Someone".into(),
            role,
            password_hash: "not-a-real-hash".into(),
        })
        .await
        .expect("insert user")
        .id
}

fn new_project(name: &str) -> NewProject {
    NewProject {
        name: Some(name.into()),
        description: Some("first".into()),
        status: ProjectStatus::Active,
    }
}

fn owner(id: UserId) -> ProjectAccess {
    ProjectAccess::new(id, false)
}

fn query(scope: ProjectScope, sort: ProjectSort, limit: i64) -> ProjectListQuery {
    ProjectListQuery {
        scope,
        status: None,
        sort,
        limit: Limit::new(limit).expect("valid limit"),
    }
}

#[tokio::test]
async fn a_project_is_visible_to_its_owner_and_admins_only() {
    let db = TestDb::new().await;
    let store = db.store();
    let ada = user(store, "ada@example.com").await;
    let bob = user(store, "bob@example.com").await;
    let created = store
        .projects()
        .create(ada, &new_project("Apollo"))
        .await
        .expect("create");
    assert_eq!(created.owner_id, ada);
    assert_eq!(created.version, 1);
    assert_eq!(created.created_at, created.updated_at);

    let found = store.projects().find(owner(ada), created.id).await;
    assert_eq!(found.ok(), Some(created.clone()));
    let root = user_with_role(store, "root@example.com", Role::Admin).await;
    let admin = ProjectAccess::new(root, true);
    assert!(store.projects().find(admin, created.id).await.is_ok());
    // A token that claims admin rights the database no longer grants.
    let demoted = ProjectAccess::new(bob, true);
    assert!(matches!(
        store.projects().find(demoted, created.id).await,
        Err(StoreError::NotFound)
    ));

    let stranger = owner(bob);
    assert!(matches!(
        store.projects().find(stranger, created.id).await,
        Err(StoreError::NotFound)
    ));
    let patch = ProjectPatch {
        name: Some("Hijacked".into()),
        ..ProjectPatch::default()
    };
    assert!(matches!(
        store
            .projects()
            .update(stranger, created.id, &patch, None)
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.projects().delete(stranger, created.id).await,
        Err(StoreError::NotFound)
    ));
    let unchanged = store
        .projects()
        .find(owner(ada), created.id)
        .await
        .expect("still there");
    assert_eq!(unchanged, created);

    store
        .projects()
        .delete(admin, created.id)
        .await
        .expect("admins delete anything");
    assert!(matches!(
        store.projects().delete(owner(ada), created.id).await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test(flavor = "current_thread")]
async fn concurrent_reads_each_get_their_own_project() {
    // Reads in flight share a connection and their statements are
    // pipelined on it: each must still get its own answer, and a missing
    // or hidden project among them must not shift the others'.
    let db = TestDb::new().await;
    let store = db.store();
    let ada = user(store, "ada@example.com").await;
    let bob = user(store, "bob@example.com").await;
    let mut created = Vec::new();
    for n in 0..40 {
        let by = if n % 4 == 3 { bob } else { ada };
        let project = store
            .projects()
            .create(by, &new_project(&format!("Project {n}")))
            .await
            .expect("create");
        created.push(project);
    }
    let projects = store.projects();
    let reads = created
        .iter()
        .map(|project| projects.find(owner(ada), project.id));
    let missing_read = projects.find(owner(ada), ProjectId::new());
    let (found, missing_found) = tokio::join!(futures_util::future::join_all(reads), missing_read);
    assert!(matches!(missing_found, Err(StoreError::NotFound)));
    for (project, found) in created.iter().zip(found) {
        if project.owner_id == ada {
            assert_eq!(found.ok().as_ref(), Some(project));
        } else {
            assert!(matches!(found, Err(StoreError::NotFound)), "{found:?}");
        }
    }
}

#[tokio::test]
async fn updates_change_only_what_is_sent_and_bump_the_version() {
    let db = TestDb::new().await;
    let store = db.store();
    let ada = user(store, "ada@example.com").await;
    let created = store
        .projects()
        .create(ada, &new_project("Apollo"))
        .await
        .expect("create");

    let renamed = ProjectPatch {
        name: Some("Gemini".into()),
        ..ProjectPatch::default()
    };
    let ProjectUpdate::Applied(after_rename) = store
        .projects()
        .update(owner(ada), created.id, &renamed, Some(&[1]))
        .await
        .expect("update")
    else {
        panic!("a matching version applies");
    };
    assert_eq!(after_rename.name, "Gemini");
    assert_eq!(after_rename.description.as_deref(), Some("first"));
    assert_eq!(after_rename.status, ProjectStatus::Active);
    assert_eq!(after_rename.version, 2);
    assert!(after_rename.updated_at > created.updated_at);
    assert_eq!(after_rename.created_at, created.created_at);

    let cleared = ProjectPatch {
        description: Some(None),
        status: Some(ProjectStatus::Archived),
        ..ProjectPatch::default()
    };
    let ProjectUpdate::Applied(after_clear) = store
        .projects()
        .update(owner(ada), created.id, &cleared, None)
        .await
        .expect("update")
    else {
        panic!("no precondition applies");
    };
    assert_eq!(after_clear.description, None);
    assert_eq!(after_clear.status, ProjectStatus::Archived);
    assert_eq!(after_clear.name, "Gemini");
    assert_eq!(after_clear.version, 3);

    // An empty patch writes nothing: same version, same timestamps.
    let ProjectUpdate::Applied(untouched) = store
        .projects()
        .update(owner(ada), created.id, &ProjectPatch::default(), None)
        .await
        .expect("empty patch")
    else {
        panic!("no precondition applies");
    };
    assert_eq!(untouched, after_clear);
}

#[tokio::test]
async fn a_stale_version_changes_nothing() {
    let db = TestDb::new().await;
    let store = db.store();
    let ada = user(store, "ada@example.com").await;
    let created = store
        .projects()
        .create(ada, &new_project("Apollo"))
        .await
        .expect("create");
    let patch = ProjectPatch {
        name: Some("Gemini".into()),
        ..ProjectPatch::default()
    };
    for versions in [&[2][..], &[0, 7], &[]] {
        let outcome = store
            .projects()
            .update(owner(ada), created.id, &patch, Some(versions))
            .await
            .expect("update");
        assert_eq!(outcome, ProjectUpdate::Stale { current_version: 1 });
        let outcome = store
            .projects()
            .update(
                owner(ada),
                created.id,
                &ProjectPatch::default(),
                Some(versions),
            )
            .await
            .expect("empty update");
        assert_eq!(outcome, ProjectUpdate::Stale { current_version: 1 });
    }
    let unchanged = store
        .projects()
        .find(owner(ada), created.id)
        .await
        .expect("find");
    assert_eq!(unchanged, created);

    // Any of several versions may match.
    let outcome = store
        .projects()
        .update(owner(ada), created.id, &patch, Some(&[5, 1]))
        .await
        .expect("update");
    assert!(matches!(outcome, ProjectUpdate::Applied(project) if project.version == 2));

    // A missing project is missing, whatever the versions say.
    assert!(matches!(
        store
            .projects()
            .update(owner(ada), ProjectId::new(), &patch, Some(&[1]))
            .await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn lists_show_the_callers_projects_filtered_and_in_order() {
    let db = TestDb::new().await;
    let store = db.store();
    let ada = user(store, "ada@example.com").await;
    let bob = user(store, "bob@example.com").await;
    for (name, status) in [
        ("charlie", ProjectStatus::Active),
        ("alpha", ProjectStatus::Archived),
        ("bravo", ProjectStatus::Active),
    ] {
        let project = NewProject {
            status,
            ..new_project(name)
        };
        store
            .projects()
            .create(ada, &project)
            .await
            .expect("create");
    }
    store
        .projects()
        .create(bob, &new_project("delta"))
        .await
        .expect("create");

    let names = |page: &[ProjectRow]| {
        page.iter()
            .map(|row| row.view().expect("a project").name.to_owned())
            .collect::<Vec<_>>()
    };
    let mine = ProjectScope::Owner(ada);
    let cases = [
        (
            ProjectSort::CreatedAtDesc,
            vec!["bravo", "alpha", "charlie"],
        ),
        (ProjectSort::CreatedAtAsc, vec!["charlie", "alpha", "bravo"]),
        (ProjectSort::NameAsc, vec!["alpha", "bravo", "charlie"]),
        (ProjectSort::NameDesc, vec!["charlie", "bravo", "alpha"]),
    ];
    for (sort, expected) in cases {
        let page = store
            .projects()
            .list(owner(ada), &query(mine, sort, 20), None)
            .await
            .expect("list");
        assert_eq!(names(&page.items), expected, "{sort}");
        assert_eq!(page.next, None);
    }

    let active = ProjectListQuery {
        status: Some(ProjectStatus::Active),
        ..query(mine, ProjectSort::NameAsc, 20)
    };
    let page = store
        .projects()
        .list(owner(ada), &active, None)
        .await
        .expect("list");
    assert_eq!(names(&page.items), ["bravo", "charlie"]);

    // Lists other than one's own need admin rights the database confirms.
    let root = ProjectAccess::new(
        user_with_role(store, "root@example.com", Role::Admin).await,
        true,
    );
    for claimed in [ProjectAccess::new(bob, true), owner(bob)] {
        for scope in [ProjectScope::All, mine] {
            let page = store
                .projects()
                .list(claimed, &query(scope, ProjectSort::NameAsc, 20), None)
                .await
                .expect("list");
            assert!(page.items.is_empty(), "{claimed:?} {scope:?}");
        }
    }
    let adas = store
        .projects()
        .list(root, &query(mine, ProjectSort::NameAsc, 20), None)
        .await
        .expect("list");
    assert_eq!(names(&adas.items), ["alpha", "bravo", "charlie"]);

    let everyone = store
        .projects()
        .list(
            root,
            &query(ProjectScope::All, ProjectSort::NameAsc, 2),
            None,
        )
        .await
        .expect("list");
    assert_eq!(names(&everyone.items), ["alpha", "bravo"]);
    assert_eq!(
        everyone.next,
        Some(ProjectKey::Name {
            name: "bravo".into(),
            id: everyone.items[1].view().expect("a project").id
        })
    );
    let rest = store
        .projects()
        .list(
            root,
            &query(ProjectScope::All, ProjectSort::NameAsc, 2),
            everyone.next.as_ref(),
        )
        .await
        .expect("list");
    assert_eq!(names(&rest.items), ["charlie", "delta"]);
    assert_eq!(rest.next, None, "an exactly full last page has no next");
}

/// Walks a list page by page while rows are inserted and deleted between
/// pages; every row that existed for the whole walk must appear exactly once,
/// and the order must hold across pages.
#[tokio::test]
async fn a_walk_never_repeats_or_skips_a_row_that_existed_throughout() {
    let db = TestDb::new().await;
    let store = db.store();
    let client = db.client().await;
    let ada = user(store, "ada@example.com").await;
    let bob = user(store, "bob@example.com").await;

    for sort in ProjectSort::ALL {
        client
            .batch_execute("DELETE FROM projects")
            .await
            .expect("clear");
        // Equal timestamps and equal names in groups of four, so that ties
        // broken by id cross page boundaries.
        client
            .execute(
                "INSERT INTO projects (id, owner_id, name, created_at) \
                 SELECT gen_random_uuid(), $1, 'p' || (i / 4), \
                        timestamptz '2026-01-01' + (i / 4) * interval '1 second' \
                 FROM generate_series(1, 60) AS i",
                &[ada.as_uuid()],
            )
            .await
            .expect("seed");
        let initial: Vec<ProjectId> = client
            .query("SELECT id FROM projects", &[])
            .await
            .expect("ids")
            .iter()
            .map(|row| ProjectId::from_uuid(row.get(0)))
            .collect();
        let doomed: HashSet<ProjectId> = initial.iter().step_by(5).copied().collect();
        let survivors: HashSet<ProjectId> = initial
            .iter()
            .filter(|id| !doomed.contains(id))
            .copied()
            .collect();
        let mut doomed: Vec<ProjectId> = doomed.into_iter().collect();

        let list_query = query(ProjectScope::Owner(ada), sort, 7);
        let mut seen = Vec::new();
        let mut keys = Vec::new();
        let mut after: Option<ProjectKey> = None;
        let mut round = 0;
        loop {
            let page = store
                .projects()
                .list(owner(ada), &list_query, after.as_ref())
                .await
                .expect("list");
            for row in &page.items {
                let project = row.view().expect("a project");
                seen.push(project.id);
                keys.push(sort.key_of(project));
            }
            let Some(next) = page.next else { break };
            after = Some(next);
            round += 1;
            // Between pages: new rows land before, inside and after the
            // walk's position (names and times on both sides); some old rows
            // go; another owner's rows must never show up.
            client
                .execute(
                    "INSERT INTO projects (id, owner_id, name, created_at) VALUES \
                     (gen_random_uuid(), $1, 'p' || $3::int, timestamptz '2026-01-01' + $3::int * interval '1 second'), \
                     (gen_random_uuid(), $1, 'a-new', now()), \
                     (gen_random_uuid(), $1, 'z-new', timestamptz '2000-01-01'), \
                     (gen_random_uuid(), $2, 'p' || $3::int, now())",
                    &[ada.as_uuid(), bob.as_uuid(), &(round * 2)],
                )
                .await
                .expect("insert during the walk");
            for _ in 0..2 {
                if let Some(id) = doomed.pop() {
                    client
                        .execute("DELETE FROM projects WHERE id = $1", &[id.as_uuid()])
                        .await
                        .expect("delete during the walk");
                }
            }
        }
        let unique: HashSet<ProjectId> = seen.iter().copied().collect();
        assert_eq!(unique.len(), seen.len(), "{sort}: a row was repeated");
        let missing: Vec<_> = survivors.difference(&unique).collect();
        assert!(missing.is_empty(), "{sort}: rows were skipped: {missing:?}");
        assert!(round >= 8, "{sort}: the walk spanned several pages");
        for pair in keys.windows(2) {
            assert!(in_order(sort, &pair[0], &pair[1]), "{sort}: {pair:?}");
        }
        let owners: HashSet<UserId> = client
            .query(
                "SELECT DISTINCT owner_id FROM projects WHERE id = ANY($1)",
                &[&seen.iter().map(|id| *id.as_uuid()).collect::<Vec<_>>()],
            )
            .await
            .expect("owners")
            .iter()
            .map(|row| UserId::from_uuid(row.get(0)))
            .collect();
        assert_eq!(owners, HashSet::from([ada]));
    }
}

/// Whether `a` comes strictly before `b` in `sort`. Names are compared by
/// the database's collation in the list; the seeded names are ASCII
/// lower-case, where that agrees with byte order.
fn in_order(sort: ProjectSort, a: &ProjectKey, b: &ProjectKey) -> bool {
    let ordering = match (a, b) {
        (
            ProjectKey::CreatedAt {
                created_at: a,
                id: ia,
            },
            ProjectKey::CreatedAt {
                created_at: b,
                id: ib,
            },
        ) => (a, ia).cmp(&(b, ib)),
        (ProjectKey::Name { name: a, id: ia }, ProjectKey::Name { name: b, id: ib }) => {
            (a, ia).cmp(&(b, ib))
        }
        _ => return false,
    };
    if sort.descending() {
        ordering.is_gt()
    } else {
        ordering.is_lt()
    }
}

/// Every list shape (own, another owner's or all × sort × status filter ×
/// first or later page),
/// over 20,000 projects, is planned without a sequential scan of `projects`,
/// both as a custom and as a generic plan.
#[tokio::test]
async fn every_list_shape_is_served_by_an_index() {
    let db = TestDb::new().await;
    let store = db.store();
    let client = db.client().await;
    let mut owners = Vec::new();
    for n in 0..10 {
        owners.push(
            *user(store, &format!("owner{n}@example.com"))
                .await
                .as_uuid(),
        );
    }
    client
        .execute(
            "INSERT INTO projects (id, owner_id, name, status, created_at) \
             SELECT gen_random_uuid(), ($1::uuid[])[1 + i % 10], md5(i::text), \
                    (ARRAY['active', 'archived', 'completed'])[1 + i % 3], \
                    timestamptz '2026-01-01' + i * interval '1 second' \
             FROM generate_series(1, 20000) AS i",
            &[&owners],
        )
        .await
        .expect("seed");
    client
        .batch_execute("ANALYZE projects")
        .await
        .expect("analyze");

    let own = UserId::from_uuid(owners[3]);
    let root = ProjectAccess::new(
        user_with_role(store, "root@example.com", Role::Admin).await,
        true,
    );
    let mut checked = 0;
    for (access, scope) in [
        (owner(own), ProjectScope::Owner(own)),
        (root, ProjectScope::Owner(own)),
        (root, ProjectScope::All),
    ] {
        for sort in ProjectSort::ALL {
            for status in [None, Some(ProjectStatus::Archived)] {
                let list_query = ProjectListQuery {
                    scope,
                    status,
                    sort,
                    limit: Limit::new(100).expect("valid"),
                };
                let first = store
                    .projects()
                    .list(access, &list_query, None)
                    .await
                    .expect("first page");
                let after = first.next.expect("more than one page");
                for key in [None, Some(&after)] {
                    for kind in [PlanKind::Custom, PlanKind::Generic] {
                        let plan = store
                            .projects()
                            .explain_list(access, &list_query, key, kind)
                            .await
                            .expect("explain");
                        assert!(
                            !plan.contains("Seq Scan on projects"),
                            "{scope:?} {sort} {status:?} after={} {kind:?}:\n{plan}",
                            key.is_some()
                        );
                        assert!(plan.contains("Index"), "{plan}");
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 96);
}

/// Two writers holding the same version race: exactly one wins, the other
/// is told its version is stale (the row lock makes the loser re-check the
/// version after the winner commits).
#[tokio::test]
async fn concurrent_writers_with_the_same_version_cannot_both_win() {
    let db = TestDb::new().await;
    let store = db.store();
    let ada = user(store, "ada@example.com").await;
    for round in 0..5 {
        let created = store
            .projects()
            .create(ada, &new_project(&format!("race {round}")))
            .await
            .expect("create");
        let patch = |name: &str| ProjectPatch {
            name: Some(name.into()),
            ..ProjectPatch::default()
        };
        let (first, second) = (patch("first"), patch("second"));
        let projects = store.projects();
        let (a, b) = tokio::join!(
            projects.update(owner(ada), created.id, &first, Some(&[1])),
            projects.update(owner(ada), created.id, &second, Some(&[1])),
        );
        let outcomes = [a.expect("first writer"), b.expect("second writer")];
        let applied = outcomes
            .iter()
            .filter(|outcome| matches!(outcome, ProjectUpdate::Applied(p) if p.version == 2))
            .count();
        let stale = outcomes
            .iter()
            .filter(|outcome| **outcome == ProjectUpdate::Stale { current_version: 2 })
            .count();
        assert_eq!((applied, stale), (1, 1), "{outcomes:?}");
    }
}
