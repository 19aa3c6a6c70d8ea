//! The function lists of PKCS#11 2.40 and 3.0 (generated from the `cryptoki-sys` 0.5 signatures).
//! Entries the module does not implement point to a stub returning `CKR_FUNCTION_NOT_SUPPORTED`;
//! no entry is NULL.

use std::ffi::c_void;

use cryptoki_sys::*;

use super::{decrypt, digest, general, object, random, session, sign, slot};

/// `CKR_FUNCTION_NOT_SUPPORTED` stubs with the exact C signatures.
#[allow(non_snake_case)]
mod stub {
    use super::*;

    macro_rules! stubs {
        ($($name:ident($($t:ty),*);)*) => {$(
            pub(super) unsafe extern "C" fn $name($(_: $t),*) -> CK_RV {
                CKR_FUNCTION_NOT_SUPPORTED
            }
        )*};
    }

    stubs! {
        C_InitToken(CK_SLOT_ID, *mut CK_UTF8CHAR, CK_ULONG, *mut CK_UTF8CHAR);
        C_GetOperationState(CK_SESSION_HANDLE, *mut CK_BYTE, *mut CK_ULONG);
        C_SetOperationState(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, CK_OBJECT_HANDLE, CK_OBJECT_HANDLE);
        C_CreateObject(CK_SESSION_HANDLE, *mut CK_ATTRIBUTE, CK_ULONG, *mut CK_OBJECT_HANDLE);
        C_CopyObject(CK_SESSION_HANDLE, CK_OBJECT_HANDLE, *mut CK_ATTRIBUTE, CK_ULONG, *mut CK_OBJECT_HANDLE);
        C_DestroyObject(CK_SESSION_HANDLE, CK_OBJECT_HANDLE);
        C_GetObjectSize(CK_SESSION_HANDLE, CK_OBJECT_HANDLE, *mut CK_ULONG);
        C_EncryptUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
        C_EncryptFinal(CK_SESSION_HANDLE, *mut CK_BYTE, *mut CK_ULONG);
        C_DecryptUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
        C_DecryptFinal(CK_SESSION_HANDLE, *mut CK_BYTE, *mut CK_ULONG);
        C_DigestKey(CK_SESSION_HANDLE, CK_OBJECT_HANDLE);
        C_SignRecoverInit(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE);
        C_SignRecover(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
        C_VerifyRecoverInit(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE);
        C_VerifyRecover(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
        C_DigestEncryptUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
        C_DecryptDigestUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
        C_SignEncryptUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
        C_DecryptVerifyUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
        C_GenerateKey(CK_SESSION_HANDLE, *mut CK_MECHANISM, *mut CK_ATTRIBUTE, CK_ULONG, *mut CK_OBJECT_HANDLE);
        C_GenerateKeyPair(CK_SESSION_HANDLE, *mut CK_MECHANISM, *mut CK_ATTRIBUTE, CK_ULONG, *mut CK_ATTRIBUTE, CK_ULONG, *mut CK_OBJECT_HANDLE, *mut CK_OBJECT_HANDLE);
        C_WrapKey(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE, CK_OBJECT_HANDLE, *mut CK_BYTE, *mut CK_ULONG);
        C_UnwrapKey(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_ATTRIBUTE, CK_ULONG, *mut CK_OBJECT_HANDLE);
        C_DeriveKey(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE, *mut CK_ATTRIBUTE, CK_ULONG, *mut CK_OBJECT_HANDLE);
        C_LoginUser(CK_SESSION_HANDLE, CK_USER_TYPE, *mut CK_UTF8CHAR, CK_ULONG, *mut CK_UTF8CHAR, CK_ULONG);
        C_SessionCancel(CK_SESSION_HANDLE, CK_FLAGS);
        C_MessageEncryptInit(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE);
        C_EncryptMessage(CK_SESSION_HANDLE, *mut c_void, CK_ULONG, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
        C_EncryptMessageBegin(CK_SESSION_HANDLE, *mut c_void, CK_ULONG, *mut CK_BYTE, CK_ULONG);
        C_EncryptMessageNext(CK_SESSION_HANDLE, *mut c_void, CK_ULONG, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG, CK_FLAGS);
        C_MessageEncryptFinal(CK_SESSION_HANDLE);
        C_MessageDecryptInit(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE);
        C_DecryptMessage(CK_SESSION_HANDLE, *mut c_void, CK_ULONG, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
        C_DecryptMessageBegin(CK_SESSION_HANDLE, *mut c_void, CK_ULONG, *mut CK_BYTE, CK_ULONG);
        C_DecryptMessageNext(CK_SESSION_HANDLE, *mut c_void, CK_ULONG, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG, CK_FLAGS);
        C_MessageDecryptFinal(CK_SESSION_HANDLE);
        C_MessageSignInit(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE);
        C_SignMessage(CK_SESSION_HANDLE, *mut c_void, CK_ULONG, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
        C_SignMessageBegin(CK_SESSION_HANDLE, *mut c_void, CK_ULONG);
        C_SignMessageNext(CK_SESSION_HANDLE, *mut c_void, CK_ULONG, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
        C_MessageSignFinal(CK_SESSION_HANDLE);
        C_MessageVerifyInit(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE);
        C_VerifyMessage(CK_SESSION_HANDLE, *mut c_void, CK_ULONG, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, CK_ULONG);
        C_VerifyMessageBegin(CK_SESSION_HANDLE, *mut c_void, CK_ULONG);
        C_VerifyMessageNext(CK_SESSION_HANDLE, *mut c_void, CK_ULONG, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, CK_ULONG);
        C_MessageVerifyFinal(CK_SESSION_HANDLE);
    }
}

/// The 68 entries of PKCS#11 2.40, shared by the 2.40 and 3.0 lists (the 3.0 list extends it).
macro_rules! function_list {
    ($ty:ident, $major:literal, $minor:literal { $($extra:tt)* }) => {
        $ty {
            version: CK_VERSION { major: $major, minor: $minor },
            C_Initialize: Some(general::C_Initialize),
            C_Finalize: Some(general::C_Finalize),
            C_GetInfo: Some(general::C_GetInfo),
            C_GetFunctionList: Some(general::C_GetFunctionList),
            C_GetSlotList: Some(slot::C_GetSlotList),
            C_GetSlotInfo: Some(slot::C_GetSlotInfo),
            C_GetTokenInfo: Some(slot::C_GetTokenInfo),
            C_GetMechanismList: Some(slot::C_GetMechanismList),
            C_GetMechanismInfo: Some(slot::C_GetMechanismInfo),
            C_InitToken: Some(stub::C_InitToken),
            C_InitPIN: Some(session::C_InitPIN),
            C_SetPIN: Some(session::C_SetPIN),
            C_OpenSession: Some(session::C_OpenSession),
            C_CloseSession: Some(session::C_CloseSession),
            C_CloseAllSessions: Some(session::C_CloseAllSessions),
            C_GetSessionInfo: Some(session::C_GetSessionInfo),
            C_GetOperationState: Some(stub::C_GetOperationState),
            C_SetOperationState: Some(stub::C_SetOperationState),
            C_Login: Some(session::C_Login),
            C_Logout: Some(session::C_Logout),
            C_CreateObject: Some(stub::C_CreateObject),
            C_CopyObject: Some(stub::C_CopyObject),
            C_DestroyObject: Some(stub::C_DestroyObject),
            C_GetObjectSize: Some(stub::C_GetObjectSize),
            C_GetAttributeValue: Some(object::C_GetAttributeValue),
            C_SetAttributeValue: Some(object::C_SetAttributeValue),
            C_FindObjectsInit: Some(object::C_FindObjectsInit),
            C_FindObjects: Some(object::C_FindObjects),
            C_FindObjectsFinal: Some(object::C_FindObjectsFinal),
            C_EncryptInit: Some(decrypt::C_EncryptInit),
            C_Encrypt: Some(decrypt::C_Encrypt),
            C_EncryptUpdate: Some(stub::C_EncryptUpdate),
            C_EncryptFinal: Some(stub::C_EncryptFinal),
            C_DecryptInit: Some(decrypt::C_DecryptInit),
            C_Decrypt: Some(decrypt::C_Decrypt),
            C_DecryptUpdate: Some(stub::C_DecryptUpdate),
            C_DecryptFinal: Some(stub::C_DecryptFinal),
            C_DigestInit: Some(digest::C_DigestInit),
            C_Digest: Some(digest::C_Digest),
            C_DigestUpdate: Some(digest::C_DigestUpdate),
            C_DigestKey: Some(stub::C_DigestKey),
            C_DigestFinal: Some(digest::C_DigestFinal),
            C_SignInit: Some(sign::C_SignInit),
            C_Sign: Some(sign::C_Sign),
            C_SignUpdate: Some(sign::C_SignUpdate),
            C_SignFinal: Some(sign::C_SignFinal),
            C_SignRecoverInit: Some(stub::C_SignRecoverInit),
            C_SignRecover: Some(stub::C_SignRecover),
            C_VerifyInit: Some(sign::C_VerifyInit),
            C_Verify: Some(sign::C_Verify),
            C_VerifyUpdate: Some(sign::C_VerifyUpdate),
            C_VerifyFinal: Some(sign::C_VerifyFinal),
            C_VerifyRecoverInit: Some(stub::C_VerifyRecoverInit),
            C_VerifyRecover: Some(stub::C_VerifyRecover),
            C_DigestEncryptUpdate: Some(stub::C_DigestEncryptUpdate),
            C_DecryptDigestUpdate: Some(stub::C_DecryptDigestUpdate),
            C_SignEncryptUpdate: Some(stub::C_SignEncryptUpdate),
            C_DecryptVerifyUpdate: Some(stub::C_DecryptVerifyUpdate),
            C_GenerateKey: Some(stub::C_GenerateKey),
            C_GenerateKeyPair: Some(stub::C_GenerateKeyPair),
            C_WrapKey: Some(stub::C_WrapKey),
            C_UnwrapKey: Some(stub::C_UnwrapKey),
            C_DeriveKey: Some(stub::C_DeriveKey),
            C_SeedRandom: Some(random::C_SeedRandom),
            C_GenerateRandom: Some(random::C_GenerateRandom),
            C_GetFunctionStatus: Some(session::C_GetFunctionStatus),
            C_CancelFunction: Some(session::C_CancelFunction),
            C_WaitForSlotEvent: Some(slot::C_WaitForSlotEvent),
            $($extra)*
        }
    };
}

/// The PKCS#11 2.40 function list.
pub(super) static FUNCTION_LIST_240: CK_FUNCTION_LIST = function_list!(CK_FUNCTION_LIST, 2, 40 {});

/// The PKCS#11 3.0 function list.
pub(super) static FUNCTION_LIST_300: CK_FUNCTION_LIST_3_0 = function_list!(CK_FUNCTION_LIST_3_0, 3, 0 {
    C_GetInterfaceList: Some(general::C_GetInterfaceList),
    C_GetInterface: Some(general::C_GetInterface),
    C_LoginUser: Some(stub::C_LoginUser),
    C_SessionCancel: Some(stub::C_SessionCancel),
    C_MessageEncryptInit: Some(stub::C_MessageEncryptInit),
    C_EncryptMessage: Some(stub::C_EncryptMessage),
    C_EncryptMessageBegin: Some(stub::C_EncryptMessageBegin),
    C_EncryptMessageNext: Some(stub::C_EncryptMessageNext),
    C_MessageEncryptFinal: Some(stub::C_MessageEncryptFinal),
    C_MessageDecryptInit: Some(stub::C_MessageDecryptInit),
    C_DecryptMessage: Some(stub::C_DecryptMessage),
    C_DecryptMessageBegin: Some(stub::C_DecryptMessageBegin),
    C_DecryptMessageNext: Some(stub::C_DecryptMessageNext),
    C_MessageDecryptFinal: Some(stub::C_MessageDecryptFinal),
    C_MessageSignInit: Some(stub::C_MessageSignInit),
    C_SignMessage: Some(stub::C_SignMessage),
    C_SignMessageBegin: Some(stub::C_SignMessageBegin),
    C_SignMessageNext: Some(stub::C_SignMessageNext),
    C_MessageSignFinal: Some(stub::C_MessageSignFinal),
    C_MessageVerifyInit: Some(stub::C_MessageVerifyInit),
    C_VerifyMessage: Some(stub::C_VerifyMessage),
    C_VerifyMessageBegin: Some(stub::C_VerifyMessageBegin),
    C_VerifyMessageNext: Some(stub::C_VerifyMessageNext),
    C_MessageVerifyFinal: Some(stub::C_MessageVerifyFinal),
});
