//! The users and refresh-token repositories against a real PostgreSQL.

use projects_domain::{DomainError, Email, Role, UserId};
use projects_store::{NewRefreshToken, NewUser, Rotation, Store, UserChangeError, UserUpdate};
use projects_testkit::TestDb;
use time::{Duration, OffsetDateTime};

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

fn hash(byte: u8) -> [u8; 32] {
    [byte; 32]
}

async fn token(store: &Store, user_id: UserId, family: uuid::Uuid, byte: u8) {
    store
        .refresh_tokens()
        .insert(&NewRefreshToken {
            user_id,
            family_id: family,
            token_hash: hash(byte),
            expires_at: OffsetDateTime::now_utc() + Duration::days(1),
        })
        .await
        .expect("insert token");
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
async fn rotation_marks_used_and_reuse_revokes_the_family() {
    let db = TestDb::new().await;
    let store = db.store();
    let id = user(store, "a@example.com", Role::User).await;
    let family = uuid::Uuid::now_v7();
    token(store, id, family, 1).await;
    let expires = OffsetDateTime::now_utc() + Duration::days(1);
    let rotated = store
        .refresh_tokens()
        .rotate(hash(1), hash(2), expires)
        .await
        .expect("rotate");
    assert!(matches!(rotated, Rotation::Rotated { user } if user.id == id));
    let reused = store
        .refresh_tokens()
        .rotate(hash(1), hash(3), expires)
        .await
        .expect("rotate");
    assert!(matches!(reused, Rotation::Reused { user_id } if user_id == id));
    let after = store
        .refresh_tokens()
        .rotate(hash(2), hash(4), expires)
        .await
        .expect("rotate");
    assert!(matches!(after, Rotation::Invalid), "the family is revoked");
    let unknown = store
        .refresh_tokens()
        .rotate(hash(9), hash(5), expires)
        .await
        .expect("rotate");
    assert!(matches!(unknown, Rotation::Invalid));
}

#[tokio::test]
async fn concurrent_rotations_of_one_token_let_exactly_one_through() {
    let db = TestDb::new().await;
    let store = db.store();
    let id = user(store, "a@example.com", Role::User).await;
    for round in 0..5u8 {
        let presented = 10 + round * 3;
        token(store, id, uuid::Uuid::now_v7(), presented).await;
        let expires = OffsetDateTime::now_utc() + Duration::days(1);
        let tokens = store.refresh_tokens();
        let (a, b) = tokio::join!(
            tokens.rotate(hash(presented), hash(presented + 1), expires),
            tokens.rotate(hash(presented), hash(presented + 2), expires),
        );
        let rotated = [a.expect("a"), b.expect("b")]
            .iter()
            .filter(|rotation| matches!(rotation, Rotation::Rotated { .. }))
            .count();
        assert_eq!(rotated, 1, "round {round}");
    }
}

#[tokio::test]
async fn a_password_change_revokes_every_token() {
    let db = TestDb::new().await;
    let store = db.store();
    let id = user(store, "a@example.com", Role::User).await;
    token(store, id, uuid::Uuid::now_v7(), 1).await;
    token(store, id, uuid::Uuid::now_v7(), 2).await;
    store
        .users()
        .change_password(id, "$argon2id$new")
        .await
        .expect("change");
    let expires = OffsetDateTime::now_utc() + Duration::days(1);
    for byte in [1, 2] {
        let rotation = store
            .refresh_tokens()
            .rotate(hash(byte), hash(byte + 10), expires)
            .await
            .expect("rotate");
        assert!(matches!(rotation, Rotation::Invalid));
    }
    let credentials = store
        .users()
        .find_credentials_by_id(id)
        .await
        .expect("found");
    assert_eq!(credentials.password_hash, "$argon2id$new");
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
