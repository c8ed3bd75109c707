using System.Net;
using System.Text;

namespace IdentityService.Tests.Infrastructure;

/// <summary>
/// A minimal writer of MaxMind DB files (format 2.0: binary search tree with 32-bit records, 16-byte data
/// section separator, data section, metadata after <c>\xAB\xCD\xEFMaxMind.com</c>), IPv4 trees only, for
/// tests that need a file of a given <c>database_type</c> and record layout (MaxMind's own GeoLite2 Country
/// format), without shipping anyone's database. Values: string, map (IDictionary&lt;string, object&gt;),
/// array (object[]), ushort, uint, ulong, int, bool, double.
/// </summary>
public sealed class MmdbWriter(string databaseType)
{
    private readonly Node _root = new();

    public MmdbWriter Add(string cidr, object record)
    {
        var network = IPNetwork.Parse(cidr);
        var bytes = network.BaseAddress.GetAddressBytes();
        if (bytes.Length != 4)
        {
            throw new ArgumentException("IPv4 networks only.", nameof(cidr));
        }

        var node = _root;
        for (var bit = 0; bit < network.PrefixLength; bit++)
        {
            var right = (bytes[bit / 8] & (0x80 >> (bit % 8))) != 0;
            if (bit == network.PrefixLength - 1)
            {
                if (right)
                {
                    node.RightRecord = record;
                }
                else
                {
                    node.LeftRecord = record;
                }
            }
            else if (right)
            {
                node = node.Right ??= new Node();
            }
            else
            {
                node = node.Left ??= new Node();
            }
        }

        return this;
    }

    public void Write(string path) => File.WriteAllBytes(path, Build());

    public byte[] Build()
    {
        // Number the nodes, then encode each record's data once.
        var nodes = new List<Node>();
        var queue = new Queue<Node>();
        queue.Enqueue(_root);
        while (queue.Count > 0)
        {
            var node = queue.Dequeue();
            node.Index = nodes.Count;
            nodes.Add(node);
            if (node.Left is not null)
            {
                queue.Enqueue(node.Left);
            }

            if (node.Right is not null)
            {
                queue.Enqueue(node.Right);
            }
        }

        var nodeCount = (uint)nodes.Count;
        var data = new MemoryStream();
        var offsets = new Dictionary<object, uint>(ReferenceEqualityComparer.Instance);
        uint Record(Node? child, object? record)
        {
            if (child is not null)
            {
                return (uint)child.Index;
            }

            if (record is null)
            {
                return nodeCount;
            }

            if (!offsets.TryGetValue(record, out var offset))
            {
                offset = (uint)data.Length;
                Encode(data, record);
                offsets[record] = offset;
            }

            return nodeCount + 16 + offset;
        }

        var output = new MemoryStream();
        foreach (var node in nodes)
        {
            WriteUInt32(output, Record(node.Left, node.LeftRecord));
            WriteUInt32(output, Record(node.Right, node.RightRecord));
        }

        output.Write(new byte[16]);
        data.WriteTo(output);
        output.Write([0xAB, 0xCD, 0xEF]);
        output.Write(Encoding.ASCII.GetBytes("MaxMind.com"));
        Encode(output, new Dictionary<string, object>
        {
            ["binary_format_major_version"] = (ushort)2,
            ["binary_format_minor_version"] = (ushort)0,
            ["build_epoch"] = (ulong)DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
            ["database_type"] = databaseType,
            ["description"] = new Dictionary<string, object> { ["en"] = "IdentityService test database" },
            ["ip_version"] = (ushort)4,
            ["languages"] = new object[] { "en" },
            ["node_count"] = nodeCount,
            ["record_size"] = (ushort)32,
        });
        return output.ToArray();
    }

    private static void WriteUInt32(Stream output, uint value) =>
        output.Write([(byte)(value >> 24), (byte)(value >> 16), (byte)(value >> 8), (byte)value]);

    private static void Encode(Stream output, object value)
    {
        switch (value)
        {
            case string text:
                var utf8 = Encoding.UTF8.GetBytes(text);
                Control(output, 2, utf8.Length);
                output.Write(utf8);
                break;
            case double number:
                Control(output, 3, 8);
                var bits = BitConverter.GetBytes(number);
                if (BitConverter.IsLittleEndian)
                {
                    Array.Reverse(bits);
                }

                output.Write(bits);
                break;
            case ushort number:
                Unsigned(output, 5, number);
                break;
            case uint number:
                Unsigned(output, 6, number);
                break;
            case int number:
                Control(output, 8, 4);
                WriteUInt32(output, unchecked((uint)number));
                break;
            case ulong number:
                Unsigned(output, 9, number);
                break;
            case bool flag:
                Control(output, 14, flag ? 1 : 0);
                break;
            case IDictionary<string, object> map:
                Control(output, 7, map.Count);
                foreach (var (key, item) in map)
                {
                    Encode(output, key);
                    Encode(output, item);
                }

                break;
            case object[] array:
                Control(output, 11, array.Length);
                foreach (var item in array)
                {
                    Encode(output, item);
                }

                break;
            default:
                throw new NotSupportedException($"No MaxMind DB encoding for {value.GetType()}.");
        }
    }

    private static void Unsigned(Stream output, int type, ulong value)
    {
        var bytes = new List<byte>();
        for (var v = value; v > 0; v >>= 8)
        {
            bytes.Insert(0, (byte)v);
        }

        Control(output, type, bytes.Count);
        output.Write(bytes.ToArray());
    }

    /// <summary>The control byte: type in the top 3 bits (0 and an extra byte for types above 7), then the size.</summary>
    private static void Control(Stream output, int type, int size)
    {
        var typeBits = type <= 7 ? type << 5 : 0;
        byte[] sizeBytes;
        int sizeBits;
        if (size < 29)
        {
            sizeBits = size;
            sizeBytes = [];
        }
        else if (size < 285)
        {
            sizeBits = 29;
            sizeBytes = [(byte)(size - 29)];
        }
        else if (size < 65_821)
        {
            sizeBits = 30;
            sizeBytes = [(byte)((size - 285) >> 8), (byte)(size - 285)];
        }
        else
        {
            sizeBits = 31;
            sizeBytes = [(byte)((size - 65_821) >> 16), (byte)((size - 65_821) >> 8), (byte)(size - 65_821)];
        }

        output.WriteByte((byte)(typeBits | sizeBits));
        if (type > 7)
        {
            output.WriteByte((byte)(type - 7));
        }

        output.Write(sizeBytes);
    }

    private sealed class Node
    {
        public int Index { get; set; }

        public Node? Left { get; set; }

        public Node? Right { get; set; }

        public object? LeftRecord { get; set; }

        public object? RightRecord { get; set; }
    }
}
