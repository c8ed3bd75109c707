namespace IdentityService.Mfa;

/// <summary>A QR code as a PNG data URI, for an <c>img</c> element (QRCoder; no script, no outside service).</summary>
public static class QrCode
{
    public static string DataUri(string text)
    {
        using var generator = new QRCoder.QRCodeGenerator();
        using var data = generator.CreateQrCode(text, QRCoder.QRCodeGenerator.ECCLevel.M);
        return "data:image/png;base64," + Convert.ToBase64String(new QRCoder.PngByteQRCode(data).GetGraphic(5));
    }
}
