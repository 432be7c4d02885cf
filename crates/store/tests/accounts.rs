//! The users repository against a real PostgreSQL (sessions and their
//! refresh tokens: `sessions.rs`).

use projects_domain::{DomainError, Email, Role, UserId};
use projects_store::{NewUser, Store, UserChangeError, UserUpdate};
use projects_testkit::TestDb;

async fn user(store: &Store, email: &str, role: Role) -> UserId {
    store
        .users()
        .insert(&NewUser {
            email: Email::parse(email).expect("valid"),
            name: "Someone".into(),
            role,
            password_hash: "$argon2id$stub".into(),
        })
        .await
        .expect("insert")
        .id
}

#[tokio::test]
async fn emails_are_unique_in_any_letter_case() {
    let db = TestDb::new().await;
    user(db.store(), "ada@example.com", Role::User).await;
    let again = db
        .store()
        .users()
        .insert(&NewUser {
            email: Email::from_trusted("ADA@example.com".into()),
            name: "Ada".into(),
            role: Role::User,
            password_hash: "x".into(),
        })
        .await;
    assert!(matches!(
        again,
        Err(projects_store::StoreError::Conflict { .. })
    ));
    let found = db
        .store()
        .users()
        .find_credentials_by_email("Ada@Example.com")
        .await
        .expect("query");
    assert!(found.is_some());
    assert!(
        !format!("{found:?}").contains("stub"),
        "Debug hides the hash"
    );
}

#[tokio::test]
async fn the_last_admin_stays() {
    let db = TestDb::new().await;
    let store = db.store();
    let admin = user(store, "root@example.com", Role::Admin).await;
    let demote = UserUpdate {
        role: Some(Role::User),
        name: None,
    };
    assert!(matches!(
        store.users().update(admin, &demote).await,
        Err(UserChangeError::Domain(DomainError::LastAdmin))
    ));
    assert!(matches!(
        store.users().delete_unless_last_admin(admin).await,
        Err(UserChangeError::Domain(DomainError::LastAdmin))
    ));
    let second = user(store, "second@example.com", Role::Admin).await;
    let demoted = store
        .users()
        .update(admin, &demote)
        .await
        .expect("two admins");
    assert_eq!(demoted.role, Role::User);
    assert!(
        store
            .users()
            .delete_unless_last_admin(second)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn users_are_listed_by_id_in_keyset_pages() {
    let db = TestDb::new().await;
    let store = db.store();
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(user(store, &format!("u{n}@example.com"), Role::User).await);
    }
    let first = store.users().list(None, 2).await.expect("page");
    let second = store
        .users()
        .list(Some(first[1].id), 2)
        .await
        .expect("page");
    let third = store
        .users()
        .list(Some(second[1].id), 2)
        .await
        .expect("page");
    let walked: Vec<UserId> = [first, second, third]
        .concat()
        .iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(walked, ids);
}
