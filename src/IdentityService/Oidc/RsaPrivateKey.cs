using System.Formats.Asn1;
using System.Security.Cryptography;

namespace IdentityService.Oidc;

/// <summary>
/// Reads an RSA private key from PKCS#8 (RFC 5208, with the RSAPrivateKey of RFC 8017 inside) into
/// <see cref="RSAParameters"/> without creating an RSA object: importing one into OpenSSL checks the key
/// with a private-key operation, about a millisecond of CPU, which a tenant whose RS256 key is not used
/// to sign should not pay. The lengths are those <see cref="RSA.ExportParameters"/> gives.
/// </summary>
internal static class RsaPrivateKey
{
    private const string RsaEncryption = "1.2.840.113549.1.1.1";

    public static RSAParameters FromPkcs8(ReadOnlyMemory<byte> pkcs8)
    {
        try
        {
            var info = new AsnReader(pkcs8, AsnEncodingRules.DER).ReadSequence();
            info.ReadInteger();
            var algorithm = info.ReadSequence();
            if (algorithm.ReadObjectIdentifier() != RsaEncryption)
            {
                throw new CryptographicException("The PKCS#8 key is not an RSA key.");
            }

            var key = new AsnReader(info.ReadOctetString(), AsnEncodingRules.DER).ReadSequence();
            if (!key.ReadInteger().IsZero)
            {
                throw new CryptographicException("Only two-prime RSA keys are supported.");
            }

            var modulus = Unsigned(key.ReadIntegerBytes().Span);
            var half = (modulus.Length + 1) / 2;
            return new RSAParameters
            {
                Modulus = modulus,
                Exponent = Unsigned(key.ReadIntegerBytes().Span),
                D = Unsigned(key.ReadIntegerBytes().Span, modulus.Length),
                P = Unsigned(key.ReadIntegerBytes().Span, half),
                Q = Unsigned(key.ReadIntegerBytes().Span, half),
                DP = Unsigned(key.ReadIntegerBytes().Span, half),
                DQ = Unsigned(key.ReadIntegerBytes().Span, half),
                InverseQ = Unsigned(key.ReadIntegerBytes().Span, half),
            };
        }
        catch (AsnContentException e)
        {
            throw new CryptographicException("The PKCS#8 RSA key is malformed.", e);
        }
    }

    /// <summary>A DER INTEGER's big-endian bytes without the sign byte, left-padded with zeros to <paramref name="length"/>.</summary>
    private static byte[] Unsigned(ReadOnlySpan<byte> integer, int length = 0)
    {
        while (integer.Length > 1 && integer[0] == 0)
        {
            integer = integer[1..];
        }

        if (integer.Length > length && length > 0)
        {
            throw new CryptographicException("An RSA key parameter is longer than its modulus allows.");
        }

        var result = new byte[Math.Max(length, integer.Length)];
        integer.CopyTo(result.AsSpan(result.Length - integer.Length));
        return result;
    }
}
