using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace IdentityService.Oidc;

/// <summary>
/// A tenant's P-256 signing key as one OpenSSL key, with its public point kept aside for the JWKS.
/// <para>
/// .NET imports an EC private key into OpenSSL's legacy <c>EC_KEY</c> form; OpenSSL 3 then makes a second copy of it
/// in its provider form at the first signature, and keeps both (about 5 KB of native memory per key, measured: 50 MB
/// with 10,000 tenants). Here, on Linux, the PKCS#8 bytes are decoded by OpenSSL itself (<c>d2i_AutoPrivateKey</c>,
/// which goes through its decoders and gives the provider form only, about 2.7 KB), and the public point, read once
/// from the same bytes, answers <see cref="ExportParameters"/> without the private part, as rendering the JWKS
/// asks. Exporting it from OpenSSL would make the legacy copy again.
/// </para>
/// <para>
/// Signing and verifying are the wrapped key's (the same OpenSSL calls as any <see cref="ECDsaOpenSsl"/>). Where the
/// native decoder cannot be used (another operating system, a libcrypto that does not load), the key is imported as
/// .NET does it: the same behaviour, without the saving.
/// </para>
/// </summary>
internal sealed class CompactEcdsa : ECDsa
{
    private readonly ECDsa _key;
    private readonly ECParameters _public;
    private int _privateExports;

    private CompactEcdsa(ECDsa key, ECParameters publicParameters)
    {
        _key = key;
        _public = publicParameters;
        KeySizeValue = 256;
        LegalKeySizesValue = [new KeySizes(256, 256, 0)];
    }

    /// <summary>Whether the key was decoded by OpenSSL into its provider form (false: imported as .NET does).</summary>
    internal bool IsProviderKey { get; private init; }

    /// <summary>How often the private parameters were exported (each export makes OpenSSL keep a second copy of the key).</summary>
    internal int PrivateExports => Volatile.Read(ref _privateExports);

    private static readonly ECCurve P256 = ECCurve.NamedCurves.nistP256;

    /// <summary>A P-256 private key from its PKCS#8 encoding.</summary>
    public static ECDsa FromPkcs8(ReadOnlySpan<byte> pkcs8)
    {
        var parsed = ECDsa.Create();
        try
        {
            parsed.ImportPkcs8PrivateKey(pkcs8, out _);
            var publicParameters = parsed.ExportParameters(includePrivateParameters: false);
            if (publicParameters.Curve.Oid?.Value != P256.Oid.Value)
            {
                throw new CryptographicException("An ES256 key is a P-256 key.");
            }

            // One curve (and its identifier's strings) for every key, where each export made its own.
            publicParameters.Curve = P256;

            if (OperatingSystem.IsLinux() && OpenSsl.TryDecodePrivateKey(pkcs8) is { } handle)
            {
                using (handle)
                {
                    // ECDsaOpenSsl takes its own reference to the key.
                    return new CompactEcdsa(new ECDsaOpenSsl(handle), publicParameters) { IsProviderKey = true };
                }
            }

            var key = parsed;
            parsed = null;
            return new CompactEcdsa(key, publicParameters);
        }
        finally
        {
            parsed?.Dispose();
        }
    }

    public override byte[] SignHash(byte[] hash) => _key.SignHash(hash);

    public override bool VerifyHash(byte[] hash, byte[] signature) => _key.VerifyHash(hash, signature);

    protected override bool TrySignHashCore(ReadOnlySpan<byte> hash, Span<byte> destination, DSASignatureFormat signatureFormat, out int bytesWritten) =>
        _key.TrySignHash(hash, destination, signatureFormat, out bytesWritten);

    protected override bool VerifyHashCore(ReadOnlySpan<byte> hash, ReadOnlySpan<byte> signature, DSASignatureFormat signatureFormat) =>
        _key.VerifyHash(hash, signature, signatureFormat);

    public override ECParameters ExportParameters(bool includePrivateParameters)
    {
        if (includePrivateParameters)
        {
            Interlocked.Increment(ref _privateExports);
            return _key.ExportParameters(includePrivateParameters: true);
        }

        return new ECParameters
        {
            Curve = _public.Curve,
            Q = new ECPoint { X = (byte[])_public.Q.X!.Clone(), Y = (byte[])_public.Q.Y!.Clone() },
        };
    }

    public override ECParameters ExportExplicitParameters(bool includePrivateParameters) => _key.ExportExplicitParameters(includePrivateParameters);

    public override void ImportParameters(ECParameters parameters) => throw new NotSupportedException("A tenant's key is never replaced in place.");

    public override void GenerateKey(ECCurve curve) => throw new NotSupportedException("A tenant's key is never replaced in place.");

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _key.Dispose();
        }

        base.Dispose(disposing);
    }

    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    private static class OpenSsl
    {
        private static bool _unavailable;

        /// <summary>The key decoded by OpenSSL 3 (its decoders give a provider key), or null where that cannot be done here.</summary>
        public static SafeEvpPKeyHandle? TryDecodePrivateKey(ReadOnlySpan<byte> pkcs8)
        {
            // Only with the OpenSSL 3 that .NET itself loaded: a key of another libcrypto must never reach .NET's.
            if (Volatile.Read(ref _unavailable) || SafeEvpPKeyHandle.OpenSslVersion >> 28 != 3)
            {
                return null;
            }

            var copy = pkcs8.ToArray();
            var pinned = GCHandle.Alloc(copy, GCHandleType.Pinned);
            try
            {
                var cursor = pinned.AddrOfPinnedObject();
                var key = d2i_AutoPrivateKey(0, ref cursor, copy.Length);
                if (key == 0)
                {
                    ERR_clear_error();
                    throw new CryptographicException("OpenSSL could not decode a tenant's ES256 key.");
                }

                return new SafeEvpPKeyHandle(key, ownsHandle: true);
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                Volatile.Write(ref _unavailable, true);
                return null;
            }
            finally
            {
                pinned.Free();
                CryptographicOperations.ZeroMemory(copy);
            }
        }

        // The libcrypto that .NET itself uses on Linux (OpenSSL 3).
        [DllImport("libcrypto.so.3")]
        private static extern nint d2i_AutoPrivateKey(nint existing, ref nint cursor, long length);

        [DllImport("libcrypto.so.3")]
        private static extern void ERR_clear_error();
    }
}
