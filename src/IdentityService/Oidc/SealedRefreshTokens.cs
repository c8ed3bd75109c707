using System.Buffers.Text;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace IdentityService.Oidc;

/// <summary>
/// A tenant's key that seals refresh tokens (<see cref="SealedRefreshTokens"/>): 32 bytes derived (HKDF) from one of
/// its encryption keys, so it rotates and retires with that key, and the first 8 bytes of that key's id, which a
/// token names so that the right key opens it.
/// </summary>
public sealed class SealingKey(byte[] id, byte[] secret)
{
    public const int IdLength = 8;

    public byte[] Id { get; } = id.Length == IdLength ? id : throw new ArgumentException($"A sealing key's id is {IdLength} bytes.", nameof(id));

    public byte[] Secret { get; } = secret.Length == 32 ? secret : throw new ArgumentException("A sealing key is 32 bytes.", nameof(secret));
}

/// <summary>
/// Refresh tokens are sealed, not made into JWTs: the token's principal (its claims, as
/// <see cref="ClaimsPrincipal.WriteTo(BinaryWriter)"/> writes them) encrypted and authenticated with AES-256-GCM
/// under a key of its own, derived from the tenant's sealing key and 16 random bytes that the token carries.
/// Only this service ever reads a refresh token, so nothing else needs a standard format; a JWT signed with HS256 and
/// then encrypted (AES key wrap, AES-CBC, HMAC) took about a fifth of a refresh's CPU to make (6% of the samples)
/// and to open (10%: two JSON documents parsed, a key unwrapped, two MACs), plus their share of OpenSSL, in a perf
/// profile of the benchmark's refreshes.
/// <para>
/// A token is <c>base64url(version 1 | key id (8) | salt (16) | ciphertext | tag (16))</c>. The version, the key id
/// and the tenant's id are authenticated with it, so a token opens only at the tenant that issued it. One key per
/// token (HKDF of the sealing key with the token's salt) means the nonce never repeats under a key, however many
/// tokens a tenant issues before its key rotates; the nonce is then zero.
/// </para>
/// Everything after the opening is OpenIddict's as before: the lifetime, the family and its generation
/// (<see cref="TokenFamilies"/>), the client the token was issued to. Refresh tokens issued as JWTs before this format
/// still go through OpenIddict's own validation.
/// </summary>
internal static class SealedRefreshTokens
{
    internal const byte Version = 1;
    private const int SaltLength = 16;
    private const int TagLength = 16;
    private const int HeaderLength = 1 + SealingKey.IdLength + SaltLength;

    /// <summary>The shortest token that can hold a principal, and the longest this service would issue (far above a real one).</summary>
    private const int MinLength = HeaderLength + TagLength + 8;
    private const int MaxLength = 16 * 1024;

    private static readonly byte[] TokenKeyLabel = "IdentityService refresh token v1"u8.ToArray();

    public static OpenIddictServerBuilder AddSealedRefreshTokens(this OpenIddictServerBuilder builder) => builder
        .AddEventHandler(Seal.Descriptor)
        .RemoveEventHandler(OpenIddictServerHandlers.Protection.AttachTokenSubject.Descriptor)
        .AddEventHandler(UnlessSealed<OpenIddictServerHandlers.Protection.AttachTokenSubject>.In(OpenIddictServerHandlers.Protection.AttachTokenSubject.Descriptor))
        .RemoveEventHandler(OpenIddictServerHandlers.Protection.AttachTokenMetadata.Descriptor)
        .AddEventHandler(UnlessSealed<OpenIddictServerHandlers.Protection.AttachTokenMetadata>.In(OpenIddictServerHandlers.Protection.AttachTokenMetadata.Descriptor))
        .AddEventHandler(Open.Descriptor)
        .RemoveEventHandler(OpenIddictServerHandlers.Protection.ValidateReferenceTokenIdentifier.Descriptor)
        .AddEventHandler(LookUpReferenceUnlessOpened.Descriptor);

    /// <summary>Seals <paramref name="principal"/> with <paramref name="key"/> for the tenant <paramref name="tenantId"/>.</summary>
    internal static string Protect(ClaimsPrincipal principal, SealingKey key, string tenantId)
    {
        // A refresh token's principal is about 1.2 KB: one buffer, not one grown from 512 bytes twice.
        using var buffer = new MemoryStream(2048);
        using (var writer = new BinaryWriter(buffer, Encoding.UTF8, leaveOpen: true))
        {
            principal.WriteTo(writer);
        }

        var plaintext = buffer.GetBuffer().AsSpan(0, (int)buffer.Length);
        var token = new byte[HeaderLength + plaintext.Length + TagLength];
        token[0] = Version;
        key.Id.CopyTo(token, 1);
        var salt = token.AsSpan(1 + SealingKey.IdLength, SaltLength);
        RandomNumberGenerator.Fill(salt);

        using var aes = Cipher(key, salt);
        aes.Encrypt(stackalloc byte[12], plaintext, token.AsSpan(HeaderLength, plaintext.Length), token.AsSpan(HeaderLength + plaintext.Length), AssociatedData(token, tenantId));
        return Base64Url.EncodeToString(token);
    }

    /// <summary>
    /// Opens a token sealed for <paramref name="tenantId"/> with one of <paramref name="keys"/>. Null when the token
    /// is not in this format or names none of the keys (it may be another kind of token); a rejection when it names a
    /// key and does not open with it (altered, or sealed for another tenant).
    /// </summary>
    internal static (ClaimsPrincipal? Principal, bool Forged) Unprotect(string token, IReadOnlyList<SealingKey> keys, string tenantId)
    {
        if (token.Length is < MinLength * 4 / 3 or > MaxLength || token.Contains('.') || !Base64Url.IsValid(token, out var size) || size < MinLength)
        {
            return (null, false);
        }

        var bytes = Base64Url.DecodeFromChars(token);
        if (bytes[0] != Version || Find(keys, bytes.AsSpan(1, SealingKey.IdLength)) is not { } key)
        {
            return (null, false);
        }

        var plaintext = bytes.AsSpan(HeaderLength, bytes.Length - HeaderLength - TagLength);
        try
        {
            using var aes = Cipher(key, bytes.AsSpan(1 + SealingKey.IdLength, SaltLength));
            aes.Decrypt(stackalloc byte[12], plaintext, bytes.AsSpan(bytes.Length - TagLength), plaintext, AssociatedData(bytes, tenantId));
        }
        catch (AuthenticationTagMismatchException)
        {
            return (null, true);
        }

        using var reader = new BinaryReader(new MemoryStream(bytes, HeaderLength, plaintext.Length, writable: false), Encoding.UTF8);
        return (new ClaimsPrincipal(reader), false);
    }

    private static SealingKey? Find(IReadOnlyList<SealingKey> keys, ReadOnlySpan<byte> id)
    {
        foreach (var key in keys)
        {
            if (id.SequenceEqual(key.Id))
            {
                return key;
            }
        }

        return null;
    }

    private static AesGcm Cipher(SealingKey key, ReadOnlySpan<byte> salt)
    {
        Span<byte> tokenKey = stackalloc byte[32];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, key.Secret, tokenKey, salt, TokenKeyLabel);
        var cipher = new AesGcm(tokenKey, TagLength);
        CryptographicOperations.ZeroMemory(tokenKey);
        return cipher;
    }

    /// <summary>The version and key id as written, then the tenant's id: a token sealed for one tenant opens at no other.</summary>
    private static byte[] AssociatedData(byte[] token, string tenantId)
    {
        var data = new byte[1 + SealingKey.IdLength + Encoding.UTF8.GetByteCount(tenantId)];
        token.AsSpan(0, 1 + SealingKey.IdLength).CopyTo(data);
        Encoding.UTF8.GetBytes(tenantId, data.AsSpan(1 + SealingKey.IdLength));
        return data;
    }

    /// <summary>
    /// A refresh token without a row (every one this service issues: <see cref="TokenFamilies"/>) is sealed instead of
    /// made into a JWT: before OpenIddict builds a JWT's subject and metadata (<see cref="UnlessSealed{THandler}"/>).
    /// </summary>
    internal sealed class Seal : IOpenIddictServerHandler<GenerateTokenContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
            OpenIddictServerHandlerDescriptor.CreateBuilder<GenerateTokenContext>()
                .UseSingletonHandler<Seal>()
                .SetOrder(OpenIddictServerHandlers.Protection.AttachTokenSubject.Descriptor.Order - 1)
                .SetType(OpenIddictServerHandlerType.Custom)
                .Build();

        public ValueTask HandleAsync(GenerateTokenContext context)
        {
            if (context.TokenType != TokenTypeIdentifiers.RefreshToken || context.CreateTokenEntry || context.IsReferenceToken || !string.IsNullOrEmpty(context.Token))
            {
                return ValueTask.CompletedTask;
            }

            var state = context.Transaction.TenantState();
            context.Token = Protect(context.Principal, state.Keys.RefreshSealing, state.Tenant.Id);
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>
    /// One of OpenIddict's handlers that build what a JWT is made of (its subject, its metadata: the claims'
    /// destinations map, audiences, dates), in its place, skipped once the token is made: a sealed refresh token
    /// uses none of it. For a refresh they were 1.8% of the samples of a perf profile. They change nothing of the
    /// token's principal, which is what a sealed token holds (checked for every token type across the OpenID
    /// Connect tests by comparing the principal before and after them).
    /// </summary>
    internal sealed class UnlessSealed<THandler> : IOpenIddictServerHandler<GenerateTokenContext>
        where THandler : IOpenIddictServerHandler<GenerateTokenContext>, new()
    {
        private static readonly THandler Inner = new();

        public static OpenIddictServerHandlerDescriptor In(OpenIddictServerHandlerDescriptor place) =>
            OpenIddictServerHandlerDescriptor.CreateBuilder<GenerateTokenContext>()
                .Import(place)
                .UseSingletonHandler<UnlessSealed<THandler>>()
                .SetType(OpenIddictServerHandlerType.Custom)
                .Build();

        public ValueTask HandleAsync(GenerateTokenContext context) =>
            string.IsNullOrEmpty(context.Token) ? Inner.HandleAsync(context) : ValueTask.CompletedTask;
    }

    /// <summary>Opens a sealed refresh token where one may be presented (the token endpoint, revocation, introspection).</summary>
    internal sealed class Open : IOpenIddictServerHandler<ValidateTokenContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
            OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenContext>()
                .UseSingletonHandler<Open>()
                .SetOrder(OpenIddictServerHandlers.Protection.ValidateReferenceTokenIdentifier.Descriptor.Order - 1)
                .SetType(OpenIddictServerHandlerType.Custom)
                .Build();

        public ValueTask HandleAsync(ValidateTokenContext context)
        {
            if (context.Principal is not null || string.IsNullOrEmpty(context.Token)
                || context.ValidTokenTypes.Count > 0 && !context.ValidTokenTypes.Contains(TokenTypeIdentifiers.RefreshToken))
            {
                return ValueTask.CompletedTask;
            }

            var state = context.Transaction.TenantState();
            var (principal, forged) = Unprotect(context.Token, state.Keys.RefreshUnsealing, state.Tenant.Id);
            if (forged)
            {
                context.Reject(Errors.InvalidToken, "The token is not valid.");
            }
            else if (principal is not null)
            {
                context.Principal = principal.SetTokenType(TokenTypeIdentifiers.RefreshToken);
            }

            return ValueTask.CompletedTask;
        }
    }

    /// <summary>
    /// OpenIddict's look-up of a reference token (a code), which treats any token that is not a JWT as the id of a
    /// token row: skipped once a sealed refresh token is opened, so a refresh reads no token row.
    /// </summary>
    internal sealed class LookUpReferenceUnlessOpened(IOpenIddictTokenManager tokens) : IOpenIddictServerHandler<ValidateTokenContext>
    {
        private readonly OpenIddictServerHandlers.Protection.ValidateReferenceTokenIdentifier _inner = new(tokens);

        /// <summary>In the place of OpenIddict's handler, behind the same filters.</summary>
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
            OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenContext>()
                .Import(OpenIddictServerHandlers.Protection.ValidateReferenceTokenIdentifier.Descriptor)
                .UseScopedHandler<LookUpReferenceUnlessOpened>()
                .SetType(OpenIddictServerHandlerType.Custom)
                .Build();

        public ValueTask HandleAsync(ValidateTokenContext context) =>
            context.Principal is not null ? ValueTask.CompletedTask : _inner.HandleAsync(context);
    }
}
