using System.Security.Cryptography;
using IdentityService.Oidc;

namespace IdentityService.Tests.Oidc;

public sealed class RsaPrivateKeyTests
{
    [Theory]
    [InlineData(2048, 12)]
    [InlineData(1032, 12)] // a modulus of 129 bytes: primes and CRT values of 65, often with leading zeros
    [InlineData(3072, 2)]
    public void Pkcs8_ReadsTheParametersOpenSslExports_AndTheyStillSign(int keySize, int keys)
    {
        for (var i = 0; i < keys; i++)
        {
            using var original = RSA.Create(keySize);
            var expected = original.ExportParameters(includePrivateParameters: true);

            var read = RsaPrivateKey.FromPkcs8(original.ExportPkcs8PrivateKey());

            Assert.Equal(expected.Modulus, read.Modulus);
            Assert.Equal(expected.Exponent, read.Exponent);
            Assert.Equal(expected.D, read.D);
            Assert.Equal(expected.P, read.P);
            Assert.Equal(expected.Q, read.Q);
            Assert.Equal(expected.DP, read.DP);
            Assert.Equal(expected.DQ, read.DQ);
            Assert.Equal(expected.InverseQ, read.InverseQ);

            using var imported = RSA.Create(read);
            var data = RandomNumberGenerator.GetBytes(64);
            var signature = imported.SignData(data, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            Assert.True(original.VerifyData(data, signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1));
        }
    }

    [Fact]
    public void NotAnRsaKey_OrDamaged_IsACryptographicError()
    {
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        Assert.Throws<CryptographicException>(() => RsaPrivateKey.FromPkcs8(ec.ExportPkcs8PrivateKey()));

        using var rsa = RSA.Create(2048);
        var truncated = rsa.ExportPkcs8PrivateKey()[..200];
        Assert.Throws<CryptographicException>(() => RsaPrivateKey.FromPkcs8(truncated));
        Assert.Throws<CryptographicException>(() => RsaPrivateKey.FromPkcs8(new byte[] { 0x30, 0x03, 0x02, 0x01 }));
    }
}
